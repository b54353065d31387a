#!/usr/bin/env python3
"""Instructions per request, counted under valgrind (callgrind), for each stack and scenario.

The stacks and scenarios are those of ``middleware_inprocess.py`` (the app called
in-process, no server): the bare app, Starlette's SessionMiddleware, starsessions,
lazysession with the cookie store and with MemoryStore, and the least a server-side
session middleware does with a valid cookie (``_floors.MinimalWrite``). An instruction
count does not drift with the machine's load as wall time does, so it shows small changes.

Each stack runs in a child Python under callgrind, at most ``--jobs`` at once. For each
scenario the child warms up, then serves a short and a long batch of requests, and calls
``os.getppid()`` between them: callgrind dumps its counts there (``--dump-before``). The
figure is (long - short) / (its extra requests), so whatever a batch costs once cancels.

    python benchmarks/instructions.py [--requests 600] [--jobs 2]
        [--stacks bare,starlette,...] [--scenarios untouched,bearer,read,write]

Without valgrind it prints one line saying so, and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks, a package

from starlette.applications import Starlette
from starlette.middleware import Middleware

from benchmarks._floors import WRITE_FLOOR, MinimalWrite
from benchmarks._table import machine_line, markdown_table
from benchmarks.middleware_inprocess import ROUTES, SCENARIOS, SECRET, login_cookie, receive

STACKS = {
    "bare": "bare app",
    "starlette": "starlette SessionMiddleware",
    "starsessions": "starsessions (memory)",
    "lazysession-cookie": "lazysession (cookie)",
    "lazysession-memory": "lazysession (MemoryStore)",
    "floor": WRITE_FLOOR,
}
"""Short names (for ``--stacks``) and the stacks' names in the tables."""

SCENARIO_NAMES = {
    "untouched": "untouched, no cookie",
    "bearer": "Bearer, handler writes",
    "read": "read, valid cookie",
    "write": "write, valid cookie",
}
"""Short names (for ``--scenarios``) and the scenarios of ``middleware_inprocess``."""

TARGET = 200_000
"""Instructions per request a write with a valid cookie may cost on lazysession's stacks."""
TARGETED = ("lazysession-cookie", "lazysession-memory")

_MARKER = "getppid"
"""The C function the child calls (``os.getppid``) where callgrind is to dump its counts."""
_REFERENCE = "starlette"


def measured(stack: str, scenario: str) -> bool:
    """The floor serves only requests with a valid cookie."""
    return stack != "floor" or scenario in ("read", "write")


def app_for(stack: str) -> Starlette:
    if stack == "floor":
        return Starlette(routes=ROUTES, middleware=[Middleware(MinimalWrite, secret_key=SECRET)])
    from benchmarks.middleware_inprocess import stacks

    return stacks()[STACKS[stack]]


async def _ignore(message: Any) -> None:
    return None


async def _serve(app: Starlette, template: dict[str, Any], count: int) -> None:
    for _ in range(count):
        await app(dict(template), receive, _ignore)


async def child(stack: str, scenarios: list[str], requests: int) -> None:
    """Under callgrind: for each scenario, warm up, then the short and the long batch,
    with a dump before and after each (four per scenario)."""
    app = app_for(stack)
    cookie = await login_cookie(app)
    short = max(1, requests // 5)
    for name in scenarios:
        template = SCENARIOS[SCENARIO_NAMES[name]](cookie)
        await _serve(app, template, min(requests, 100))
        for count in (short, requests):
            gc.collect()
            os.getppid()  # dump: what came before this batch
            await _serve(app, template, count)
            os.getppid()  # dump: the batch
    print(json.dumps({"short": short, "long": requests}))


_SUMMARY = re.compile(r"^summary:\s+(\d+)", re.MULTILINE)


def _dumped(path: Path) -> int:
    found = _SUMMARY.search(path.read_text())
    if found is None:
        raise RuntimeError(f"no summary line in {path}")
    return int(found.group(1))


def count_stack(valgrind: str, stack: str, scenarios: list[str], requests: int) -> dict[str, float]:
    """Instructions per request in each scenario, from one child run under callgrind."""
    with tempfile.TemporaryDirectory(prefix="lazysession-callgrind-") as folder:
        out = Path(folder) / "callgrind.out"
        command = [
            valgrind,
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            f"--dump-before={_MARKER}",
            "--dump-instr=no",
            "--compress-strings=no",
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            stack,
            "--scenarios",
            ",".join(scenarios),
            "--requests",
            str(requests),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{stack} under callgrind failed:\n{done.stderr[-3000:]}")
        batches = json.loads(done.stdout.strip().splitlines()[-1])
        dumps = sorted(Path(folder).glob("callgrind.out.*"), key=lambda path: int(path.suffix[1:]))
        if len(dumps) != 4 * len(scenarios):
            raise RuntimeError(f"{stack}: {len(dumps)} dumps, expected {4 * len(scenarios)}")
        counts = [_dumped(path) for path in dumps]
    extra = batches["long"] - batches["short"]
    per_request = {}
    for index, name in enumerate(scenarios):
        _, short, _, long = counts[4 * index : 4 * index + 4]
        per_request[name] = (long - short) / extra
    return per_request


def thousands(count: float) -> str:
    return f"{count / 1000:.1f}k"


def main(valgrind: str, stacks: list[str], scenarios: list[str], requests: int, jobs: int) -> None:
    def run(stack: str) -> dict[str, float]:
        wanted = [name for name in scenarios if measured(stack, name)]
        return count_stack(valgrind, stack, wanted, requests) if wanted else {}

    if "starsessions" in stacks:
        try:
            import starsessions  # noqa: F401
        except ImportError:
            print("starsessions is not installed: its rows are left out", file=sys.stderr)
            stacks = [stack for stack in stacks if stack != "starsessions"]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        counted = dict(zip(stacks, pool.map(run, stacks), strict=True))

    print(f"## Instructions per request, in-process, under callgrind ({machine_line()})\n")
    print(
        f"Per stack, one child under callgrind; per scenario, ({requests} requests - "
        f"{max(1, requests // 5)}) / their difference, after a warm-up.\n"
    )
    reference = counted.get(_REFERENCE, {})
    rows = []
    for scenario in scenarios:
        for stack in stacks:
            count = counted[stack].get(scenario)
            if count is None:
                continue
            versus = reference.get(scenario)
            rows.append(
                [
                    SCENARIO_NAMES[scenario],
                    STACKS[stack],
                    thousands(count),
                    f"{count / versus:.3f}" if versus else "-",
                ]
            )
    print(markdown_table(["scenario", "stack", "instructions/req", "x starlette"], rows))
    verdicts = [
        f"{STACKS[stack]} {thousands(counted[stack]['write'])}"
        f" ({'holds' if counted[stack]['write'] <= TARGET else 'misses'})"
        for stack in TARGETED
        if stack in counted and "write" in counted[stack]
    ]
    if verdicts:
        print(
            f"\nTarget: a write with a valid cookie <= {thousands(TARGET)} instructions: "
            + "; ".join(verdicts)
            + "."
        )


def _names(text: str, known: dict[str, str], what: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return names


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=600, help="the long batch (>= 2)")
    parser.add_argument("--jobs", type=int, default=2, help="children under callgrind at once")
    parser.add_argument("--stacks", default=",".join(STACKS))
    parser.add_argument("--scenarios", default=",".join(SCENARIO_NAMES))
    parser.add_argument("--valgrind", default="valgrind", help="the valgrind to run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    chosen_scenarios = _names(args.scenarios, SCENARIO_NAMES, "scenarios")
    if args.child is not None:
        asyncio.run(child(args.child, chosen_scenarios, args.requests))
        sys.exit(0)
    if args.requests < 2:
        parser.error("--requests must be at least 2")
    found = shutil.which(args.valgrind)
    if found is None:
        print(f"valgrind ({args.valgrind}) is not installed: instruction counts skipped")
        sys.exit(0)
    main(
        found,
        _names(args.stacks, STACKS, "stacks"),
        chosen_scenarios,
        args.requests,
        args.jobs,
    )
