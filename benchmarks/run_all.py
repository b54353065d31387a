#!/usr/bin/env python3
"""Run every benchmark in turn; each prints its own Markdown table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Each with arguments that keep the whole run to a few minutes; run a script on its own
# for the full-size figures (the sweep's million rows, the load test's 200 browsers).
BENCHMARKS = [
    ["middleware_inprocess.py", "--rounds", "21"],
    ["overhead.py", "--rounds", "2", "--seconds", "1"],
    ["flood.py"],
    ["stores.py", "--seconds", "2"],
    ["sweep.py", "--expired", "200000"],
    ["load.py", "--browsers", "50", "--requests", "40", "--bearers", "500"],
]


def main() -> int:
    failed = 0
    for name, *arguments in BENCHMARKS:
        print(f"\n# {name}\n", flush=True)
        failed |= subprocess.run([sys.executable, str(HERE / name), *arguments]).returncode
    return failed


if __name__ == "__main__":
    sys.exit(main())
