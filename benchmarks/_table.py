"""Helpers every benchmark shares: interleaved rounds, medians with spread, Markdown tables."""

from __future__ import annotations

import platform
import statistics
from collections.abc import Sequence
from datetime import datetime, timezone


def median_and_spread(samples: Sequence[float]) -> tuple[float, float]:
    """The median, and half the interquartile range relative to it (half the whole range
    when there are too few samples for quartiles)."""
    middle = statistics.median(samples)
    if not middle:
        return middle, 0.0
    if len(samples) < 4:
        return middle, (max(samples) - min(samples)) / 2 / middle
    low, _, high = statistics.quantiles(samples, n=4)
    return middle, (high - low) / 2 / middle


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for index, row in enumerate(cells):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if index == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine_line() -> str:
    import os

    return (
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}"
    )
