#!/usr/bin/env python3
"""The sweep against a backlog: 1,000,000 expired sessions and 10,000 live ones.

For SQLite (a file) and PostgreSQL (when reachable) it prints how long the sweep took, the
rows it deleted per second, and the latency of session saves made by concurrent clients
while it ran, against the same clients with no sweep running, as a ratio from the same
run; and the rows left afterwards, which must equal the live ones.

    python benchmarks/sweep.py [--expired 1000000] [--live 10000] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from _server import reachable
from _table import machine_line, markdown_table

from lazysession import SQLAlchemyStore

POSTGRES = os.environ.get("LAZYSESSION_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
NOW = datetime.now(timezone.utc)
BASELINE_SECONDS = 5.0
PACE = 0.02  # each client saves 50 times a second


def key(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def fill_sqlite(path: Path, table: str, expired: int, live: int) -> None:
    """Bulk-load with the sqlite3 module: the backlog an older system left behind."""
    connection = sqlite3.connect(path)
    stamp = "%Y-%m-%d %H:%M:%S.%f"
    rows = (
        (
            key(i),
            '{"user_id":%d}' % i,
            (NOW - timedelta(days=40)).strftime(stamp),
            (NOW - timedelta(days=40)).strftime(stamp),
            (NOW - timedelta(seconds=1 + i * 2)).strftime(stamp),
        )
        for i in range(expired)
    )
    with connection:
        connection.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?)", rows)
        live_expiry = (NOW + timedelta(days=14)).strftime(stamp)
        connection.executemany(
            f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?)",
            (
                (key(expired + i), '{"user_id":1}', live_expiry, live_expiry, live_expiry)
                for i in range(live)
            ),
        )
    connection.close()


def fill_postgres(url: str, table: str, expired: int, live: int) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"""
            INSERT INTO {table} (session_id, data, created_at, updated_at, expires_at)
            SELECT encode(sha256(i::text::bytea), 'hex'), '{{"user_id":' || i || '}}',
                   :now - interval '40 days', :now - interval '40 days',
                   :now - (1 + i * 2) * interval '1 second'
            FROM generate_series(0, :expired - 1) AS i
        """),
            {"now": NOW, "expired": expired},
        )
        conn.execute(
            sa.text(f"""
            INSERT INTO {table} (session_id, data, created_at, updated_at, expires_at)
            SELECT encode(sha256(i::text::bytea), 'hex'), '{{"user_id"\\:1}}',
                   :now, :now, :now + interval '14 days'
            FROM generate_series(:expired, :expired + :live - 1) AS i
        """),
            {"now": NOW, "expired": expired, "live": live},
        )
        conn.execute(sa.text(f"ANALYZE {table}"))
    engine.dispose()


async def clients_saving(
    store: SQLAlchemyStore, clients: int, live: int, expired: int, stop: asyncio.Event
) -> list[float]:
    """Concurrent clients, each saving a random live session every ``PACE`` seconds (live
    traffic, not a flood that would saturate the event loop); latencies in ms."""
    latencies: list[float] = []

    async def client() -> None:
        await asyncio.sleep(random.random() * PACE)
        while not stop.is_set():
            session_id = key(expired + random.randrange(live))
            started = time.perf_counter()
            await store.save(
                session_id,
                {"user_id": 1, "n": random.random()},
                expires_at=datetime.now(timezone.utc) + timedelta(days=14),
            )
            took = time.perf_counter() - started
            latencies.append(took * 1000)
            await asyncio.sleep(max(0.0, PACE - took))

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else float("nan")


async def run_backend(name: str, url: str, args: argparse.Namespace) -> list[object]:
    table = f"lazysession_bench_{uuid.uuid4().hex[:8]}"
    sweeper = SQLAlchemyStore(url, table_name=table, batch_size=args.batch_size)
    # As in an app: the middleware sweeps and saves through one store (one pool; for
    # SQLite, one queue of writers).
    writer = sweeper
    await sweeper.count()  # creates the table
    print(
        f"{name}: loading {args.expired:,} expired and {args.live:,} live rows ...",
        file=sys.stderr,
        flush=True,
    )
    if name == "SQLite":
        fill_sqlite(Path(url.split(":///", 1)[1]), table, args.expired, args.live)
    else:
        fill_postgres(POSTGRES, table, args.expired, args.live)
    assert await writer.count() == args.expired + args.live

    stop = asyncio.Event()
    baseline_task = asyncio.create_task(
        clients_saving(writer, args.clients, args.live, args.expired, stop)
    )
    await asyncio.sleep(BASELINE_SECONDS)
    stop.set()
    baseline = await baseline_task

    stop = asyncio.Event()
    during_task = asyncio.create_task(
        clients_saving(writer, args.clients, args.live, args.expired, stop)
    )
    await asyncio.sleep(0.2)
    started = time.perf_counter()
    deleted = await sweeper.sweep()
    elapsed = time.perf_counter() - started
    stop.set()
    during = await during_task
    left = await writer.count()

    engine = sweeper.check_async()
    if engine is None:  # a SQLite file, served by the stdlib driver
        with sweeper.check_sync().begin() as sync_conn:
            sync_conn.execute(sa.text(f"DROP TABLE {table}"))
    else:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"DROP TABLE {table}"))
    await sweeper.aclose()

    p50_base, p99_base = percentile(baseline, 50), percentile(baseline, 99)
    p50_during, p99_during = percentile(during, 50), percentile(during, 99)
    return [
        name,
        f"{deleted:,}",
        f"{elapsed:.1f}",
        f"{deleted / elapsed:,.0f}",
        f"{p50_base:.2f} / {p99_base:.2f}",
        f"{p50_during:.2f} / {p99_during:.2f}",
        f"{p99_during / p99_base:.2f}",
        f"{left:,}",
        "yes" if left == args.live else "NO",
    ]


async def main(args: argparse.Namespace) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(
            await run_backend("SQLite", f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", args)
        )
    if reachable(POSTGRES, 5432):
        rows.append(
            await run_backend(
                "PostgreSQL", POSTGRES.replace("postgresql://", "postgresql+asyncpg://", 1), args
            )
        )
    else:
        print(f"PostgreSQL at {POSTGRES} is not reachable: its row is left out", file=sys.stderr)
    print(f"## Sweeping a backlog ({machine_line()})\n")
    print(
        f"{args.expired:,} expired + {args.live:,} live rows, batches of at most "
        f"{args.batch_size:,} (SQLite: paced to about 10 ms; PostgreSQL: resting half a "
        "batch after each); "
        f"{args.clients} concurrent clients each saving a session every {PACE * 1000:.0f} ms, "
        f"{BASELINE_SECONDS:.0f} s "
        "without a sweep, then during the sweep. Latencies in ms.\n"
    )
    print(
        markdown_table(
            [
                "store",
                "deleted",
                "sweep s",
                "rows/s",
                "save p50/p99, no sweep",
                "save p50/p99, sweeping",
                "p99 ratio",
                "rows left",
                "left = live",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--expired", type=int, default=1_000_000)
    parser.add_argument("--live", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=1000)
    asyncio.run(main(parser.parse_args()))
