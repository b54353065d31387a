#!/usr/bin/env python3
"""The sweep against a backlog: 1,000,000 expired sessions and 10,000 live ones.

For SQLite (a file) and PostgreSQL (when reachable) it prints how long the sweep took, the
rows it deleted per second, and the latency of session saves made by concurrent clients
while it ran, against the same clients with no sweep running, as a ratio from the same
run; and the rows left afterwards, which must equal the live ones. Each store runs three
backlogs that differ only in their keys and expiry times:

- ``random``: keys as ids minted before ids carried a time have them (a SHA-256 of a
  random id), a fixed lifetime: the rows a sweep deletes together are scattered over the
  primary key's index (the backlog before time-prefixed keys);
- ``time``: keys as ``_signing.store_key`` makes them now (the creation time, then a
  SHA-256), a fixed lifetime (14 days from creation): expiry order is creation order, so
  rows that expire together are neighbours;
- ``sliding``: time-prefixed keys, sliding idle expiry (one hour after a session's last
  use, its use lasting an exponentially distributed time, mean one day, at most 14
  days): expiry order differs from creation order, the limit of what the key order buys.

Rows go in in creation order, as a live system inserts them.

    python benchmarks/sweep.py [--expired 1000000] [--live 10000] [--clients 8]
                               [--backlogs random,time,sliding] [--stores sqlite,postgresql]
                               [--owned 0.1] [--report]

``--report`` sweeps as the middleware does with ``on_event`` set (``on_swept``), and
``--owned`` gives that share of SQLite's expired rows an owner.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks, a package

import sqlalchemy as sa

from benchmarks._server import reachable
from benchmarks._table import machine_line, markdown_table
from lazysession import SQLAlchemyStore
from lazysession._signing import new_session_id, store_key
from lazysession.stores.sql.dialects import SQLITE_BATCH_SECONDS

POSTGRES = os.environ.get("LAZYSESSION_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
NOW = datetime.now(timezone.utc)
BASELINE_SECONDS = 5.0
PACE = 0.02  # each client saves 50 times a second
LIFETIME = timedelta(days=14)
IDLE = timedelta(hours=1)
MEAN_USE = timedelta(days=1)
SLIDING_CREATED = (timedelta(days=30), timedelta(days=15))  # created this long ago: all expired

BACKLOGS = {
    "random": "random (before)",
    "time": "time-prefixed",
    "sliding": "time-prefixed, sliding expiry",
}


def key(backlog: str, i: int, created: datetime) -> str:
    """Row ``i``'s key: the same hash part in every backlog, so only the order differs."""
    digest = hashlib.sha256(str(i).encode()).hexdigest()
    if backlog == "random":
        return digest
    return f"{math.floor(created.timestamp() * 1000):012x}" + digest[:52]


def check_key_format() -> None:
    """The keys made here have the shape ``store_key`` gives the store's ids."""
    created = NOW - timedelta(days=3)
    made = store_key(new_session_id(created.timestamp()))
    assert made[:12] == key("time", 0, created)[:12] and len(made) == 64, made


def expired_rows(backlog: str, expired: int, seed: int = 42) -> Iterator[tuple[datetime, datetime]]:
    """(created, expires) of each expired session, in creation order."""
    if backlog != "sliding":
        for i in reversed(range(expired)):  # the oldest expiry first
            expires = NOW - timedelta(seconds=1 + i * 2)
            yield expires - LIFETIME, expires
        return
    draw = random.Random(seed)
    oldest, newest = SLIDING_CREATED
    span = (oldest - newest).total_seconds()
    rows = []
    for _ in range(expired):
        created = NOW - newest - timedelta(seconds=draw.random() * span)
        used = min(timedelta(seconds=draw.expovariate(1 / MEAN_USE.total_seconds())), LIFETIME)
        rows.append((created, min(created + used + IDLE, created + LIFETIME)))
    rows.sort()
    yield from rows


_COLUMNS = "session_id, data, created_at, updated_at, expires_at, owner"


def fill_sqlite(
    path: Path, table: str, backlog: str, expired: int, live: int, owned: float = 0.0
) -> list[str]:
    """Bulk-load with the sqlite3 module (the backlog an older system left behind), a
    share ``owned`` of the expired rows with an owner; the live sessions' keys."""
    connection = sqlite3.connect(path)
    stamp = "%Y-%m-%d %H:%M:%S.%f"
    every = round(1 / owned) if owned > 0 else 0
    rows = (
        (key(backlog, i, created), '{"user_id":%d}' % i, created.strftime(stamp),
         created.strftime(stamp), expires.strftime(stamp),
         f"user{i % 1000}" if every and i % every == 0 else None)
        for i, (created, expires) in enumerate(expired_rows(backlog, expired))
    )  # fmt: skip
    live_keys = [key(backlog, expired + i, NOW) for i in range(live)]
    with connection:
        connection.executemany(f"INSERT INTO {table} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows)
        now, live_expiry = NOW.strftime(stamp), (NOW + LIFETIME).strftime(stamp)
        connection.executemany(
            f"INSERT INTO {table} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL)",
            ((k, '{"user_id":1}', now, now, live_expiry) for k in live_keys),
        )
    connection.close()
    return live_keys


def _pg_key(backlog: str) -> str:
    """``key`` in SQL, over ``i`` and ``c`` (the creation time)."""
    digest = "encode(sha256(i::text::bytea), 'hex')"
    if backlog == "random":
        return digest
    prefix = "lpad(to_hex(floor(extract(epoch from c) * 1000)::bigint), 12, '0')"
    return f"{prefix} || left({digest}, 52)"


def fill_postgres(url: str, table: str, backlog: str, expired: int, live: int) -> list[str]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    if backlog == "sliding":
        oldest, newest = SLIDING_CREATED
        rows = """
            SELECT i, c, least(c + least(-ln(1 - random()) * :mean_use, :lifetime) + :idle,
                               c + :lifetime) AS e
            FROM (SELECT i, :now - :newest - random() * (:oldest - :newest) AS c
                  FROM generate_series(0, :expired - 1) AS i) AS drawn"""
        params = {"mean_use": MEAN_USE, "idle": IDLE, "oldest": oldest, "newest": newest}
    else:
        rows = """
            SELECT i, e - :lifetime AS c, e
            FROM (SELECT i, :now - (1 + i * 2) * interval '1 second' AS e
                  FROM generate_series(0, :expired - 1) AS i) AS drawn"""
        params = {}
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT setseed(0.42)"))
        conn.execute(
            sa.text(f"""
            INSERT INTO {table} (session_id, data, created_at, updated_at, expires_at)
            SELECT {_pg_key(backlog)}, '{{"user_id":' || i || '}}', c, c, e
            FROM ({rows}) AS backlog ORDER BY c
        """),
            {"now": NOW, "expired": expired, "lifetime": LIFETIME, **params},
        )
        conn.execute(
            sa.text(f"""
            INSERT INTO {table} (session_id, data, created_at, updated_at, expires_at)
            SELECT {_pg_key(backlog)}, '{{"user_id"\\:1}}', c, c, c + :lifetime
            FROM (SELECT i, CAST(:now AS timestamptz) AS c
                  FROM generate_series(:expired, :expired + :live - 1) AS i) AS fresh
        """),
            {"now": NOW, "expired": expired, "live": live, "lifetime": LIFETIME},
        )
        conn.execute(sa.text(f"ANALYZE {table}"))
        live_keys = [
            row[0]
            for row in conn.execute(
                sa.text(f"SELECT session_id FROM {table} WHERE expires_at > :now"),
                {"now": NOW},
            )
        ]
    engine.dispose()
    return live_keys


async def clients_saving(
    store: SQLAlchemyStore, clients: int, live_keys: list[str], stop: asyncio.Event
) -> list[float]:
    """Concurrent clients, each saving a random live session every ``PACE`` seconds (live
    traffic, not a flood that would saturate the event loop); latencies in ms."""
    latencies: list[float] = []

    async def client() -> None:
        await asyncio.sleep(random.random() * PACE)
        while not stop.is_set():
            session_id = random.choice(live_keys)
            started = time.perf_counter()
            await store.save(
                session_id,
                {"user_id": 1, "n": random.random()},
                expires_at=datetime.now(timezone.utc) + LIFETIME,
            )
            took = time.perf_counter() - started
            latencies.append(took * 1000)
            await asyncio.sleep(max(0.0, PACE - took))

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


def written() -> int | None:
    """Bytes this process has handed to ``write()`` so far (Linux), which for SQLite is the
    database's own writes (WAL and checkpoints): a measure that CPU load does not move."""
    try:
        with open("/proc/self/io") as io:
            for line in io:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else float("nan")


async def run_backend(name: str, url: str, backlog: str, args: argparse.Namespace) -> list[object]:
    table = f"lazysession_bench_{uuid.uuid4().hex[:8]}"
    sweeper = SQLAlchemyStore(url, table_name=table, batch_size=args.batch_size)
    # As in an app: the middleware sweeps and saves through one store (one pool; for
    # SQLite, one queue of writers).
    writer = sweeper
    await sweeper.count()  # creates the table
    print(
        f"{name}, {BACKLOGS[backlog]} keys: loading {args.expired:,} expired and "
        f"{args.live:,} live rows ...",
        file=sys.stderr,
        flush=True,
    )
    if name == "SQLite":
        path = Path(url.split(":///", 1)[1])
        live_keys = fill_sqlite(path, table, backlog, args.expired, args.live, args.owned)
    else:
        live_keys = fill_postgres(POSTGRES, table, backlog, args.expired, args.live)
    assert len(live_keys) == args.live
    assert await writer.count() == args.expired + args.live

    stop = asyncio.Event()
    baseline_task = asyncio.create_task(clients_saving(writer, args.clients, live_keys, stop))
    await asyncio.sleep(BASELINE_SECONDS)
    stop.set()
    baseline = await baseline_task

    stop = asyncio.Event()
    during_task = asyncio.create_task(clients_saving(writer, args.clients, live_keys, stop))
    await asyncio.sleep(0.2)
    started, before = time.perf_counter(), written()
    reported: list[int] = []
    if args.report:  # as the middleware sweeps with on_event set: the owned rows told
        deleted = await sweeper.sweep(on_swept=lambda owned: reported.append(len(owned)))
    else:
        deleted = await sweeper.sweep()
    elapsed, after = time.perf_counter() - started, written()
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
        BACKLOGS[backlog],
        f"{deleted:,}",
        f"{elapsed:.1f}",
        f"{deleted / elapsed:,.0f}",
        "-"
        if name != "SQLite" or before is None or after is None
        else f"{(after - before) / 1e6:,.0f}",
        f"{p50_base:.2f} / {p99_base:.2f}",
        f"{p50_during:.2f} / {p99_during:.2f}",
        f"{p99_during / p99_base:.2f}",
        f"{left:,}",
        "yes" if left == args.live else "NO",
        f"{sum(reported):,}" if args.report else "-",
    ]


async def main(args: argparse.Namespace) -> None:
    check_key_format()
    backlogs = args.backlogs.split(",")
    unknown = set(backlogs) - set(BACKLOGS)
    if unknown:
        sys.exit(f"--backlogs: {', '.join(sorted(unknown))} is not one of {', '.join(BACKLOGS)}")
    stores = args.stores.split(",")
    rows = []
    if "sqlite" in stores:
        for backlog in backlogs:
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
                rows.append(await run_backend("SQLite", url, backlog, args))
    postgres = "postgresql" in stores and reachable(POSTGRES, 5432)
    if postgres:
        url = POSTGRES.replace("postgresql://", "postgresql+asyncpg://", 1)
        for backlog in backlogs:
            rows.append(await run_backend("PostgreSQL", url, backlog, args))
    elif "postgresql" in stores:
        print(f"PostgreSQL at {POSTGRES} is not reachable: its rows are left out", file=sys.stderr)
    print(f"## Sweeping a backlog ({machine_line()})\n")
    print(
        f"{args.expired:,} expired + {args.live:,} live rows, batches of at most "
        f"{args.batch_size:,} (SQLite: paced to about {SQLITE_BATCH_SECONDS * 1000:g} ms; "
        "PostgreSQL: resting half a batch after each); "
        f"{args.clients} concurrent clients each saving a session every {PACE * 1000:.0f} ms, "
        f"{BASELINE_SECONDS:.0f} s "
        "without a sweep, then during the sweep. Latencies in ms. Keys: random (a SHA-256 "
        "of the id, as before ids carried a time), time-prefixed (a 14-day lifetime: "
        "expiry order is creation order), time-prefixed with sliding expiry (an hour "
        "after last use; use lasting a mean of one day: expiry order differs from "
        "creation order). MB written: what the SQLite sweep wrote (WAL and checkpoints), "
        "the clients' saves included.\n"
    )
    print(
        markdown_table(
            [
                "store",
                "keys",
                "deleted",
                "sweep s",
                "rows/s",
                "MB written",
                "save p50/p99, no sweep",
                "save p50/p99, sweeping",
                "p99 ratio",
                "rows left",
                "left = live",
                "owned told",
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
    parser.add_argument("--backlogs", default=",".join(BACKLOGS), help="default: all three")
    parser.add_argument("--stores", default="sqlite,postgresql", help="default: both")
    parser.add_argument(
        "--owned",
        type=float,
        default=0.0,
        help="share of the expired rows (SQLite) that have an owner; default none",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="sweep with on_swept, as the middleware does when on_event is set",
    )
    asyncio.run(main(parser.parse_args()))
