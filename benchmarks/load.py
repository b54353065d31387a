#!/usr/bin/env python3
"""Load on a real server: uvicorn with 2 workers and the PostgreSQL store.

200 browsers, each with its own session, make 100 requests that read and increment a
counter, while 1,000 Bearer clients call an API whose handler writes to the session.
Then the same again with the sweep running every second and a stream of sessions that
expire during the run. Afterwards it checks: no errors, every counter equals its request
count, sessions in the store equal the browsers, none from Bearer clients, no live session
deleted. Prints throughput and p50/p99 per request kind. Loopback only, bounded in time.

    python benchmarks/load.py [--browsers 200] [--requests 100] [--bearers 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks, a package

import sqlalchemy as sa

from benchmarks._http import Connection
from benchmarks._server import served
from benchmarks._table import machine_line, markdown_table

POSTGRES = os.environ.get("LAZYSESSION_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
TIME_LIMIT = 240.0


def count_rows(table: str) -> int:
    engine = sa.create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    engine.dispose()
    return int(rows)


def drop(table: str) -> None:
    engine = sa.create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


async def run_phase(port: int, args: argparse.Namespace, expiring: bool) -> dict[str, object]:
    latencies: dict[str, list[float]] = {"browser": [], "bearer": [], "expiring": []}
    errors: list[str] = []
    counters: list[int] = []
    deadline = time.monotonic() + TIME_LIMIT
    stop = asyncio.Event()

    async def browser() -> None:
        connection = Connection(port)
        last = 0
        for _ in range(args.requests):
            if time.monotonic() > deadline:
                errors.append("time limit")
                break
            reply = await connection.get("/count")
            latencies["browser"].append(reply.seconds)
            if reply.status != 200:
                errors.append(f"browser {reply.status}")
                break
            last = int(reply.body.split(b":")[1].rstrip(b"}"))
        counters.append(last)
        await connection.close()

    async def bearers(per_connection: int) -> None:
        connection = Connection(port)
        for i in range(per_connection):
            reply = await connection.get("/api", {"Authorization": f"Bearer token-{i}"})
            latencies["bearer"].append(reply.seconds)
            if reply.status != 200 or reply.header("set-cookie"):
                errors.append(f"bearer {reply.status} {reply.header('set-cookie')}")
        await connection.close()

    async def expirer() -> None:
        while not stop.is_set():
            connection = Connection(port)  # a new visitor each time: a new session
            reply = await connection.get("/ephemeral")
            latencies["expiring"].append(reply.seconds)
            if reply.status != 200:
                errors.append(f"expiring {reply.status}")
            await connection.close()
            await asyncio.sleep(0.02)

    started = time.perf_counter()
    bearer_connections = 50
    expiring_task = asyncio.create_task(expirer()) if expiring else None
    await asyncio.gather(
        *(browser() for _ in range(args.browsers)),
        *(bearers(args.bearers // bearer_connections) for _ in range(bearer_connections)),
    )
    elapsed = time.perf_counter() - started
    stop.set()
    if expiring_task is not None:
        await expiring_task
    total = sum(len(v) for v in latencies.values())
    return {
        "elapsed": elapsed,
        "total": total,
        "latencies": latencies,
        "errors": errors,
        "counters": counters,
    }


def summary(
    name: str, phase: dict[str, object], args: argparse.Namespace, rows_after: int
) -> list[list[object]]:
    latencies: dict[str, list[float]] = phase["latencies"]  # type: ignore[assignment]
    counters: list[int] = phase["counters"]  # type: ignore[assignment]
    errors: list[str] = phase["errors"]  # type: ignore[assignment]
    elapsed = float(phase["elapsed"])  # type: ignore[arg-type]
    out: list[list[object]] = []
    for kind, values in latencies.items():
        if not values:
            continue
        ms = sorted(v * 1000 for v in values)
        out.append(
            [
                name,
                kind,
                f"{len(values):,}",
                f"{len(values) / elapsed:,.0f}",
                f"{statistics.median(ms):.1f}",
                f"{ms[int(len(ms) * 0.99) - 1]:.1f}",
            ]
        )
    checks = [
        f"errors: {len(errors)}",
        f"counters = {args.requests}: {sum(c == args.requests for c in counters)}/{args.browsers}",
        f"sessions stored: {rows_after} (browsers: {args.browsers})",
    ]
    out.append([name, "checks", "; ".join(checks), "", "", ""])
    return out


async def main(args: argparse.Namespace) -> int:
    rows: list[list[object]] = []
    failed = False
    for name, expiring, interval in (("steady", False, "300"), ("sweep every 1 s", True, "1")):
        table = f"lazysession_load_{uuid.uuid4().hex[:8]}"
        url = POSTGRES.replace("postgresql://", "postgresql+asyncpg://", 1)
        env = {"BENCH_STORE_URL": url, "BENCH_SWEEP_INTERVAL": interval, "BENCH_TABLE": table}
        try:
            with served("lazysession-postgresql", workers=2, **env) as port:
                phase = await run_phase(port, args, expiring)
                if expiring:
                    await asyncio.sleep(2.5)  # every ephemeral session is past its second
                    # One more sweep pass from a worker: a request makes none, so wait.
                    await asyncio.sleep(1.5)
            rows_after = count_rows(table)
        finally:
            drop(table)
        rows += summary(name, phase, args, rows_after)
        counters: list[int] = phase["counters"]  # type: ignore[assignment]
        failed |= (
            bool(phase["errors"])
            or rows_after != args.browsers
            or any(c != args.requests for c in counters)
        )
    print(f"## Load on uvicorn, 2 workers, PostgreSQL store ({machine_line()})\n")
    print(
        f"{args.browsers} browsers x {args.requests} requests; {args.bearers:,} Bearer "
        "requests over 50 connections; second run with the sweep every second and a new "
        "session expiring every ~20 ms. Latencies in ms.\n"
    )
    print(markdown_table(["run", "kind", "requests", "req/s", "p50", "p99"], rows))
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--browsers", type=int, default=200)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--bearers", type=int, default=1000)
    sys.exit(asyncio.run(main(parser.parse_args())))
