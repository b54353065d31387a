"""PNG charts for the benchmarks, drawn with matplotlib when it is installed (the
``bench`` extra); without it the tables are printed and the chart is skipped."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


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
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib is not installed: {path.name} is not drawn", file=sys.stderr)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(max(6.0, 1.6 * len(categories) + 2), 4.5))
    width = 0.8 / max(1, len(series))
    for index, (name, values) in enumerate(series.items()):
        positions = [c + (index - (len(series) - 1) / 2) * width for c in range(len(categories))]
        axes.bar(positions, values, width, label=name)
    axes.set_xticks(range(len(categories)), categories, rotation=15, ha="right")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    if log:
        axes.set_yscale("log")
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
