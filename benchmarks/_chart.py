"""PNG charts for the benchmarks, drawn with matplotlib when it is installed (the
``bench`` extra); without it the tables are printed and the chart is skipped."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _pyplot(path: Path) -> Any:
    """matplotlib's pyplot, drawing to files; None (and a note) when it is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib is not installed: {path.name} is not drawn", file=sys.stderr)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    return plt


def bar_chart(
    path: Path,
    title: str,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    ylabel: str,
    *,
    log: bool = False,
) -> Path | None:
    """Grouped bars: one group per category, one bar per series. Returns the file."""
    plt = _pyplot(path)
    if plt is None:
        return None
    figure, axes = plt.subplots(figsize=(max(6.0, 1.6 * len(categories) + 2) + 2.5, 4.5))
    width = 0.8 / max(1, len(series))
    for index, (name, values) in enumerate(series.items()):
        positions = [c + (index - (len(series) - 1) / 2) * width for c in range(len(categories))]
        axes.bar(positions, values, width, label=name)
    axes.set_xticks(range(len(categories)), categories, rotation=15, ha="right")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    if log:
        axes.set_yscale("log")
    # Beside the plot, never over a bar.
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def line_chart(
    path: Path,
    title: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    xlabel: str,
    ylabel: str,
    *,
    event: tuple[float, str] | None = None,
) -> Path | None:
    """One line per series of (x, y) points, on a log scale that still shows zero;
    ``event`` draws a dashed vertical line at x with its label. Returns the file."""
    plt = _pyplot(path)
    if plt is None:
        return None
    figure, axes = plt.subplots(figsize=(8.0, 4.5))
    for name, points in series.items():
        axes.plot([x for x, _ in points], [y for _, y in points], marker=".", label=name)
    if event is not None:
        axes.axvline(event[0], color="grey", linestyle="--", linewidth=1)
        axes.annotate(
            event[1],
            (event[0], 1),
            xytext=(-4, 4),
            textcoords="offset points",
            fontsize="small",
            ha="right",
        )
    axes.set_yscale("symlog", linthresh=1)
    highest = max((y for points in series.values() for _, y in points), default=1.0)
    axes.set_ylim(bottom=0, top=max(10.0, highest * 3))
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
