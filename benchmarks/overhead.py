#!/usr/bin/env python3
"""What each session middleware costs per request, served by uvicorn (1 worker, no access
log) and loaded over loopback by wrk when it is installed, else by a built-in generator in
this process (``--load`` chooses).

Stacks: no session middleware (the physical limit), Starlette's SessionMiddleware and
lazysession's cookie store (its drop-in), starsessions (memory store, autoload),
lazysession with MemoryStore and with SQLite; and,
when Redis is reachable, starsessions' Redis store against lazysession's. Scenarios: an
untouched route without a cookie; the same with ``Authorization: Bearer``; a read without
a cookie; a read and a write with a valid cookie. Runs are interleaved (every stack in
turn, each round starting one stack further on) and repeated; the table gives medians
with their spread, and ratios to the bare app from the same round. Bounded in time;
loopback only. (wrk runs whole seconds: ``--seconds`` is rounded for it.)

    python benchmarks/overhead.py [--rounds 3] [--seconds 1.5] [--connections 8]
        [--load auto|wrk|built-in]
        [--stacks "lazysession (MemoryStore),starlette SessionMiddleware"]
        [--scenarios "untouched, no cookie;untouched, Bearer"]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks, a package

from benchmarks._chart import RESULTS, bar_chart
from benchmarks._floors import FLOORS, measured_in
from benchmarks._http import Connection
from benchmarks._load import Load
from benchmarks._server import reachable, served
from benchmarks._table import machine_line, markdown_table, median_and_spread

SCENARIOS = {
    "untouched, no cookie": ("/untouched", False, {}),
    "untouched, Bearer": ("/untouched", False, {"Authorization": "Bearer sdk-token"}),
    "read, no cookie": ("/read", False, {}),
    "read, valid cookie": ("/read", True, {}),
    "write, valid cookie": ("/write", True, {}),
}


async def login(port: int) -> str | None:
    connection = Connection(port)
    await connection.get("/write")
    await connection.close()
    return connection.cookie  # None for the bare app


def measured(stacks: list[tuple[str, int]], scenario: str) -> list[tuple[str, int]]:
    return [(name, port) for name, port in stacks if measured_in(name, scenario)]


async def run(args: argparse.Namespace, ports: dict[str, int]) -> None:
    load = Load.choose(args.load, args.connections, args.seconds)
    for name, port in ports.items():  # warm each server up before anything is counted
        await load.measure(port, "/untouched" if name in FLOORS else "/write", None, {})
    cookies = {name: None if name in FLOORS else await login(port) for name, port in ports.items()}
    rps: dict[tuple[str, str], list[float]] = {}
    p99: dict[tuple[str, str], list[float]] = {}
    ratio: dict[tuple[str, str], list[float]] = {}
    scenarios = {name: SCENARIOS[name] for name in args.scenarios}
    stacks = list(ports.items())
    for round_number in range(args.rounds):
        for scenario, (path, with_cookie, headers) in scenarios.items():
            # Each round starts one stack further on, so no stack always runs first (right
            # after the previous scenario) or last: position effects even out in medians.
            these = measured(stacks, scenario)
            shift = round_number % len(these)
            this_round: dict[str, float] = {}
            for name, port in these[shift:] + these[:shift]:
                cookie = cookies[name] if with_cookie else None
                rate, tail = await load.measure(port, path, cookie, headers)
                this_round[name] = rate
                rps.setdefault((name, scenario), []).append(rate)
                p99.setdefault((name, scenario), []).append(tail)
            for name, rate in this_round.items():
                ratio.setdefault((name, scenario), []).append(rate / this_round["bare app"])
    print(f"## Served by uvicorn, 1 worker ({machine_line()})\n")
    print(
        f"{args.rounds} interleaved rounds (each starting one stack further on) per stack "
        f"and scenario of {load.describe()}; medians (± half the interquartile "
        "range); 'x bare' is requests per second relative to the bare app in the same "
        "round (1.000 = no cost).\n"
    )
    rows = []
    for scenario in scenarios:
        for name, _ in measured(stacks, scenario):
            rate, spread = median_and_spread(rps[(name, scenario)])
            relative, _ = median_and_spread(ratio[(name, scenario)])
            tail = statistics.median(p99[(name, scenario)])
            rows.append(
                [
                    scenario,
                    name,
                    f"{rate:,.0f} ± {spread * 100:.0f}%",
                    f"{relative:.3f}",
                    f"{tail:.1f}",
                ]
            )
    print(markdown_table(["scenario", "stack", "req/s", "x bare", "p99 ms"], rows))
    if len(scenarios) < len(SCENARIOS) or args.partial:
        return  # the chart shows whole runs only
    chart = bar_chart(
        RESULTS / "overhead.png",
        "Requests per second, served by uvicorn",
        list(SCENARIOS),
        {
            name: [median_and_spread(rps[(name, s)])[0] for s in SCENARIOS]
            for name in ports
            if name not in FLOORS
        },
        "requests per second",
    )
    if chart is not None:
        print(f"\nChart: {chart}")


def main(args: argparse.Namespace) -> None:
    stacks: dict[str, tuple[str, dict[str, str]]] = {
        "bare app": ("bare", {}),
        "pass-through wrapper (floor)": ("pass-through", {}),
        "lazy minimum (floor)": ("lazy-minimum", {}),
        "starlette SessionMiddleware": ("starlette", {}),
        "lazysession (cookie)": ("lazysession-cookie", {}),
        "starsessions (memory)": ("starsessions", {}),
        "lazysession (MemoryStore)": ("lazysession-memory", {}),
    }
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as servers:
        stacks["lazysession (SQLite)"] = (
            "lazysession-sqlite",
            {"BENCH_STORE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db"},
        )
        if reachable("redis://127.0.0.1:6379", 6379):
            prefix = f"bench-{uuid.uuid4().hex[:8]}:"
            stacks["starsessions (Redis)"] = ("starsessions-redis", {})
            stacks["lazysession (Redis)"] = ("lazysession-redis", {"BENCH_PREFIX": prefix})
        else:
            print("Redis is not reachable: the Redis rows are left out", file=sys.stderr)
        if args.stacks:
            wanted = {"bare app", *args.stacks}
            unknown = wanted - set(stacks)
            if unknown:
                sys.exit(
                    f"unknown stacks: {', '.join(sorted(unknown))}; known: {', '.join(stacks)}"
                )
            stacks = {name: stack for name, stack in stacks.items() if name in wanted}
        ports = {
            name: servers.enter_context(served(stack, 1, **env))
            for name, (stack, env) in stacks.items()
        }
        asyncio.run(run(args, ports))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--load",
        choices=["auto", "wrk", "built-in"],
        default="auto",
        help="the load generator: wrk when installed (auto), or the built-in one",
    )
    parser.add_argument(
        "--stacks",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        default=[],
        help="only these stacks, by their names in the table, comma-separated (and the bare app)",
    )
    parser.add_argument(
        "--scenarios",
        type=lambda text: [name.strip() for name in text.split(";") if name.strip()],
        default=list(SCENARIOS),
        help="only these scenarios, separated by ';'",
    )
    arguments = parser.parse_args()
    unknown = set(arguments.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {'; '.join(sorted(unknown))}")
    arguments.partial = bool(arguments.stacks)
    main(arguments)
