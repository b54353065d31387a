"""The benchmarks' charts are real PNG files."""

from __future__ import annotations

from pathlib import Path

from benchmarks._chart import bar_chart, line_chart


def test_a_grouped_bar_chart_is_written_as_png(tmp_path: Path) -> None:
    path = bar_chart(
        tmp_path / "chart.png", "title", ["a", "b"], {"x": [1.0, 2.0], "y": [3.0, 4.0]}, "units"
    )
    assert path is not None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_line_chart_with_an_event_is_written_as_png(tmp_path: Path) -> None:
    path = line_chart(
        tmp_path / "lines.png",
        "title",
        {"grows": [(0, 0), (10, 100)], "swept": [(0, 0), (10, 3), (12, 0)]},
        "x",
        "y",
        event=(11, "sweep"),
    )
    assert path is not None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
