#!/usr/bin/env python3
"""The owner index of SQLAlchemyStore: listing an owner's sessions and revoking them all.

For SQLite (a file) and PostgreSQL and MariaDB/MySQL (when reachable), in a table that
also holds ``--others`` sessions of other owners, it prints the median time of
``sessions_of`` for an owner with ``--listed`` sessions (``--rounds`` calls), and of
``revoke_all`` for an owner with ``--revoked`` sessions (each round on fresh rows, with
``keep`` naming one of them, so the kept one's key is looked up too). Both through the
async side (asyncpg, asyncmy; SQLite's file through its inline executor).

    python benchmarks/owners.py [--listed 1000] [--revoked 10000] [--others 10000]
                                [--rounds 5] [--stores sqlite,postgresql,mysql]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks, a package

import sqlalchemy as sa

from benchmarks._server import reachable
from benchmarks._table import machine_line, markdown_table
from lazysession import SQLAlchemyStore
from lazysession._identity import handle_of

POSTGRES = os.environ.get("LAZYSESSION_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL = os.environ.get("LAZYSESSION_BENCH_MYSQL", "mysql://root@127.0.0.1:3306/test")
NOW = datetime.now(timezone.utc)


def fill(sync_url: str, table: sa.Table, owner: str, count: int, tag: str) -> list[str]:
    """``count`` sessions of ``owner`` written straight into the table; their keys."""
    keys = [f"{tag}{n:0{64 - len(tag)}x}" for n in range(count)]
    rows = [
        {
            "session_id": key,
            "data": f'{{"user":"{owner}","__lazysession__":{{"c":{int(NOW.timestamp())},'
            f'"u":"{owner}","d":"Firefox on Linux"}}}}',
            "created_at": NOW,
            "updated_at": NOW - timedelta(seconds=n),
            "expires_at": NOW + timedelta(days=14),
            "owner": owner,
        }
        for n, key in enumerate(keys)
    ]
    engine = sa.create_engine(sync_url)
    try:
        with engine.begin() as conn:
            for start in range(0, len(rows), 5_000):
                conn.execute(table.insert(), rows[start : start + 5_000])
    finally:
        engine.dispose()
    return keys


async def measure(name: str, sync_url: str, async_url: str, args: argparse.Namespace) -> list[str]:
    table_name = f"lazysession_bench_{uuid.uuid4().hex[:10]}"
    store = SQLAlchemyStore(async_url, table_name=table_name)
    try:
        await store.count()  # creates the table
        for n in range(10):
            fill(sync_url, store.table, f"user{n}", args.others // 10, f"o{n}")
        fill(sync_url, store.table, "listed", args.listed, "l")
        listing = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            found = await store.sessions_of("listed")
            listing.append(time.perf_counter() - started)
            assert len(found) == args.listed
        revoking = []
        for round_ in range(args.rounds):
            keys = fill(sync_url, store.table, f"revoked{round_}", args.revoked, f"r{round_}")
            started = time.perf_counter()
            ended = await store.revoke_all(f"revoked{round_}", keep=handle_of(keys[0]))
            revoking.append(time.perf_counter() - started)
            assert ended == args.revoked - 1
        return [
            name,
            f"{statistics.median(listing) * 1000:.1f} ms",
            f"{statistics.median(revoking) * 1000:.0f} ms",
        ]
    finally:
        await store.aclose()
        store.sync.close()
        engine = sa.create_engine(sync_url)
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table_name}"))
        engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listed", type=int, default=1_000)
    parser.add_argument("--revoked", type=int, default=10_000)
    parser.add_argument("--others", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stores", default="sqlite,postgresql,mysql")
    args = parser.parse_args()
    stores = args.stores.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        if "sqlite" in stores:
            path = Path(folder) / "sessions.db"
            rows.append(
                await measure(
                    "SQLite (file)", f"sqlite:///{path}", f"sqlite+aiosqlite:///{path}", args
                )
            )
    for kind, url, port, async_driver, sync_driver in (
        ("postgresql", POSTGRES, 5432, "postgresql+asyncpg", "postgresql+psycopg"),
        ("mysql", MYSQL, 3306, "mysql+asyncmy", "mysql+pymysql"),
    ):
        if kind not in stores:
            continue
        if not reachable(url, port):
            print(f"{kind} at {url} is not reachable: its row is left out", file=sys.stderr)
            continue
        rest = url[url.index("://") :]
        rows.append(await measure(async_driver, sync_driver + rest, async_driver + rest, args))
    print(f"## The owner index ({machine_line()})\n")
    print(
        f"Median of {args.rounds} rounds; the table also holds {args.others:,} sessions of "
        "other owners.\n"
    )
    print(
        markdown_table(
            (
                "store",
                f"sessions_of ({args.listed:,} sessions)",
                f"revoke_all ({args.revoked:,} sessions, one kept)",
            ),
            rows,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
