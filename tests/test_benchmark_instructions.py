"""The instruction-count benchmark prints its table from callgrind's dumps, and skips with
one line where valgrind is missing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks.instructions import _dumped

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "instructions.py"


def run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )


def test_without_valgrind_it_skips_with_one_line(tmp_path: Path) -> None:
    done = run("--valgrind", str(tmp_path / "no-valgrind"), "--requests", "4")
    assert done.stdout.strip().splitlines() == [
        f"valgrind ({tmp_path / 'no-valgrind'}) is not installed: instruction counts skipped"
    ]


def test_a_dump_is_read_from_its_summary_line(tmp_path: Path) -> None:
    dump = tmp_path / "callgrind.out.1"
    dump.write_text("version: 1\ncmd: python\nevents: Ir\nsummary: 123456\ntotals: 123456\n")
    assert _dumped(dump) == 123456


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_a_tiny_run_prints_a_row_per_stack_and_the_target() -> None:
    # Under callgrind the child's imports alone take most of this run's time.
    done = run("--requests", "4", "--stacks", "lazysession-cookie", "--scenarios", "write")
    lines = done.stdout.splitlines()
    rows = [line for line in lines if line.startswith("| write, valid cookie")]
    assert len(rows) == 1
    assert "lazysession (cookie)" in rows[0]
    assert any(line.startswith("Target: a write with a valid cookie <= 200.0k") for line in lines)
