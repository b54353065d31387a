#!/usr/bin/env python3
"""Run every benchmark in turn; each prints its own Markdown table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["middleware_inprocess.py", "stores.py", "sweep.py"]


def main() -> int:
    failed = 0
    for name in BENCHMARKS:
        print(f"\n# {name}\n", flush=True)
        failed |= subprocess.run([sys.executable, str(HERE / name), *sys.argv[1:]]).returncode
    return failed


if __name__ == "__main__":
    sys.exit(main())
