#!/usr/bin/env python3
"""Load and save throughput and p99 latency of each store, side by side, from one run.

Memory and SQLite always; PostgreSQL, MariaDB and Redis when reachable on this machine.
Each store gets the same work: ``--clients`` concurrent tasks saving, then loading, random
sessions among ``--sessions`` for ``--seconds`` each.

    python benchmarks/stores.py [--seconds 3] [--clients 16] [--sessions 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks, a package

from benchmarks._server import reachable
from benchmarks._table import machine_line, markdown_table
from lazysession import MemoryStore, RedisStore, SQLAlchemyStore, Store

POSTGRES = os.environ.get("LAZYSESSION_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL = os.environ.get("LAZYSESSION_BENCH_MYSQL", "mysql://root@127.0.0.1:3306/test")
REDIS = os.environ.get("LAZYSESSION_BENCH_REDIS", "redis://127.0.0.1:6379/0")
SESSION = {"user_id": 42, "roles": ["reader", "writer"], "csrf": "x" * 43, "cart": [1, 2, 3]}


def key(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


async def run_phase(store: Store, operation: str, args: argparse.Namespace) -> tuple[float, float]:
    """Operations per second and p99 in ms."""
    latencies: list[float] = []
    deadline = time.perf_counter() + args.seconds
    expires = datetime.now(timezone.utc) + timedelta(hours=1)

    async def client() -> None:
        while time.perf_counter() < deadline:
            session_id = key(random.randrange(args.sessions))
            started = time.perf_counter()
            if operation == "save":
                await store.save(session_id, SESSION, expires_at=expires)
            else:
                await store.load(session_id)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(args.clients)))
    elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, statistics.quantiles(latencies, n=100)[98]


async def measure(name: str, store: Store, args: argparse.Namespace) -> list[object]:
    await store.count()  # connect, create the table
    save_rate, save_p99 = await run_phase(store, "save", args)
    load_rate, load_p99 = await run_phase(store, "load", args)
    await store.aclose()
    return [name, f"{save_rate:,.0f}", f"{save_p99:.2f}", f"{load_rate:,.0f}", f"{load_p99:.2f}"]


async def main(args: argparse.Namespace) -> None:
    rows = []
    table = f"lazysession_bench_{uuid.uuid4().hex[:8]}"
    prefix = f"lazysession-bench:{uuid.uuid4().hex[:8]}:"
    rows.append(await measure("MemoryStore", MemoryStore(), args))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        rows.append(
            await measure("SQLite (aiosqlite)", SQLAlchemyStore(url, table_name=table), args)
        )
    servers = [
        ("PostgreSQL (asyncpg)", POSTGRES, 5432, "postgresql+asyncpg"),
        ("MariaDB (asyncmy)", MYSQL, 3306, "mysql+asyncmy"),
    ]
    for name, server, port, driver in servers:
        if not reachable(server, port):
            print(f"{name}: {server} is not reachable, left out", file=sys.stderr)
            continue
        url = driver + server[server.index("://") :]
        store = SQLAlchemyStore(url, table_name=table)
        rows.append(await measure(name, store, args))
        cleanup = SQLAlchemyStore(url, table_name=table)
        engine = cleanup.check_async()
        assert engine is not None
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f"DROP TABLE {table}")
        await cleanup.aclose()
    if reachable(REDIS, 6379):
        rows.append(await measure("Redis", RedisStore(REDIS, prefix=prefix), args))
        cleaner = RedisStore(REDIS, prefix=prefix).check_sync()
        for stale in cleaner.scan_iter(match=prefix + "*", count=1000):
            cleaner.delete(stale)
    else:
        print(f"Redis: {REDIS} is not reachable, left out", file=sys.stderr)
    print(f"## Store operations ({machine_line()})\n")
    print(
        f"{args.clients} concurrent clients for {args.seconds:g} s per operation, "
        f"over {args.sessions:,} sessions; latencies in ms.\n"
    )
    print(markdown_table(["store", "saves/s", "save p99", "loads/s", "load p99"], rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--sessions", type=int, default=2000)
    asyncio.run(main(parser.parse_args()))
