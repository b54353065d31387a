#!/usr/bin/env python3
"""What a store that hangs, is locked, is slow or has just come back costs a request.

Each store is reached through the tests' TCP proxy on loopback, which can black-hole
traffic (accept and never answer), slow it, or cut it; locks are taken by another
connection, SQLite's write lock by another process. Printed, per fault, store and shell:
the answer and how long it took (``>cap`` when there was none within ``--cap`` seconds).
Stores are given ``timeout=--timeout`` when the lazysession being run has that option;
to measure another tree, put its ``src`` first: ``PYTHONPATH=/path/to/src``.

    python benchmarks/faults.py [--timeout 1] [--cap 30] [--only black-hole,sqlite,...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import logging
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from tests.helpers import client
from tests.reliability.faults import asgi_app, sync_url, wsgi_client
from tests.reliability.proxy import Proxy
from tests.reliability.test_timeouts import HOLD_THE_WRITE_LOCK

from benchmarks._table import machine_line, markdown_table
from lazysession import RedisStore, SQLAlchemyStore, Store

PORTS = {"postgresql": 5432, "mysql": 3306, "redis": 6379}
FAULTS = ["black-hole", "lock", "pool", "sqlite", "redis-burst", "outage"]


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.timeout: float = args.timeout
        self.cap: float = args.cap
        self.rows: list[list[str]] = []
        self.cleanups: list[Callable[[], None]] = []

    def options(self, factory: Any, **extra: Any) -> dict[str, Any]:
        accepted = inspect.signature(factory).parameters
        chosen = {"timeout": self.timeout, **extra}
        return {name: value for name, value in chosen.items() if name in accepted}

    def store(self, kind: str, port: int, **extra: Any) -> Store:
        if kind == "redis":
            prefix = f"lazysession-bench:{uuid.uuid4().hex[:12]}:"
            return RedisStore(
                f"redis://127.0.0.1:{port}/0", prefix=prefix, **self.options(RedisStore, **extra)
            )
        url = sync_url(kind, port)
        table = f"lazysession_bench_{uuid.uuid4().hex[:12]}"
        self.cleanups.append(lambda: drop(sync_url(kind), table))
        return SQLAlchemyStore(
            kind + url[url.index("://") :],
            table_name=table,
            **self.options(SQLAlchemyStore, **extra),
        )

    def row(
        self, fault: str, kind: str, shell: str, answer: str, seconds: float | str | None
    ) -> None:
        if isinstance(seconds, str):
            took = seconds
        else:
            took = f">{self.cap:g}" if seconds is None else f"{seconds:.2f}"
        self.rows.append([fault, kind, shell, answer, took])
        print(f"  {fault:<34} {kind:<20} {shell:<5} {answer:<28} {took}", flush=True)


def drop(url: str, table: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


def server_of(kind: str) -> str:
    return kind.split("+")[0]


async def capped(cap: float, call: Callable[[], Awaitable[Any]]) -> tuple[Any, float | None]:
    started = time.perf_counter()
    task = asyncio.ensure_future(call())
    done, _ = await asyncio.wait({task}, timeout=cap)
    if not done:
        return None, None  # left running: the proxy's reset ends it
    return task.result(), time.perf_counter() - started


def capped_sync(cap: float, call: Callable[[], Any]) -> tuple[Any, float | None]:
    answer: list[Any] = []
    started = time.perf_counter()
    worker = threading.Thread(target=lambda: answer.append(call()), daemon=True)
    worker.start()
    worker.join(cap)
    if worker.is_alive():
        return None, None
    return (answer[0] if answer else None), time.perf_counter() - started


def status(response: Any) -> str:
    return "no answer" if response is None else str(response.status_code)


async def close(store: Store, proxy: Proxy) -> None:
    proxy.up()
    try:
        await asyncio.wait_for(store.aclose(), 10)
    except Exception as error:  # measuring, not testing
        print(f"    (closing: {type(error).__name__})")
    store.sync.close()
    proxy.close()


# -- faults --------------------------------------------------------------------------------


async def black_hole(run: Run) -> None:
    for kind in ["postgresql+asyncpg", "postgresql+psycopg", "mysql+asyncmy", "mysql+aiomysql"]:
        await black_hole_asgi(run, kind)
    await black_hole_asgi(run, "redis")
    for kind in ["postgresql+psycopg", "mysql+pymysql", "redis"]:
        await asyncio.to_thread(black_hole_wsgi, run, kind)


async def black_hole_asgi(run: Run, kind: str) -> None:
    for route in ("/read", "/untouched"):
        proxy = Proxy(PORTS[server_of(kind)])
        proxy.up()
        store = run.store(kind, proxy.port)
        async with client(asgi_app(store)) as http:
            await http.get("/write", params={"user": "ada"})
            proxy.black_hole()
            response, seconds = await capped(run.cap, partial(http.get, route))
            run.row(f"black hole, {route} with a cookie", kind, "asgi", status(response), seconds)
        await close(store, proxy)


def black_hole_wsgi(run: Run, kind: str) -> None:
    proxy = Proxy(PORTS[server_of(kind)])
    proxy.up()
    store = run.store(kind, proxy.port)
    http = wsgi_client(store, "wsgi")
    http.get("/write?user=ada")
    proxy.black_hole()
    response, seconds = capped_sync(run.cap, lambda: http.get("/read"))
    run.row("black hole, /read with a cookie", kind, "wsgi", status(response), seconds)
    proxy.up()
    store.sync.close()
    proxy.close()


async def locks(run: Run) -> None:
    for kind, statement, route in [
        ("postgresql+asyncpg", "SELECT * FROM {t} FOR UPDATE", "/write"),
        ("mysql+asyncmy", "SELECT * FROM {t} FOR UPDATE", "/write"),
        ("postgresql+asyncpg", "LOCK TABLE {t} IN ACCESS EXCLUSIVE MODE", "/read"),
    ]:
        proxy = Proxy(PORTS[server_of(kind)])
        proxy.up()
        store = run.store(kind, proxy.port)
        assert isinstance(store, SQLAlchemyStore)
        async with client(asgi_app(store)) as http:
            await http.get("/write", params={"user": "ada"})
            engine = sa.create_engine(sync_url(kind))
            with engine.connect() as holder:
                holder.begin()
                holder.execute(sa.text(statement.format(t=store.table.name)))
                response, seconds = await capped(
                    run.cap, partial(http.get, route, params={"n": "1"})
                )
                holder.rollback()
            engine.dispose()
            fault = "row lock held, a write" if "UPDATE" in statement else "table lock, a read"
            run.row(fault, kind, "asgi", status(response), seconds)
        await close(store, proxy)


async def pool(run: Run) -> None:
    for kind in ["postgresql+asyncpg", "mysql+asyncmy", "redis"]:
        proxy = Proxy(PORTS[server_of(kind)])
        proxy.up()
        one: dict[str, Any] = (
            {"max_connections": 1}
            if kind == "redis"
            else {"engine_options": {"pool_size": 1, "max_overflow": 0}}
        )
        store = run.store(kind, proxy.port, **one)
        async with client(asgi_app(store)) as http:
            await http.get("/write", params={"user": "ada"})
            proxy.black_hole()
            answers = await asyncio.gather(
                *(capped(run.cap, lambda: http.get("/read")) for _ in range(3))
            )
            times = [seconds for _, seconds in answers]
            slowest = None if None in times else max(t for t in times if t is not None)
            statuses = ",".join(status(r) for r, _ in answers)
            run.row("black hole, 3 requests, 1 connection", kind, "asgi", statuses, slowest)
        await close(store, proxy)


async def sqlite(run: Run) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.db"
        store = SQLAlchemyStore(f"sqlite+aiosqlite:///{path}", **run.options(SQLAlchemyStore))
        async with client(asgi_app(store)) as http:
            await http.get("/write", params={"user": "ada"})
            http.cookies.clear()
            with other_process_holds_the_write_lock(path):
                answers = await asyncio.gather(
                    *(
                        capped(run.cap, partial(http.get, "/write", params={"n": str(n)}))
                        for n in range(4)
                    )
                )
            for k, (response, seconds) in enumerate(sorted(answers, key=by_time), start=1):
                run.row(
                    f"sqlite locked elsewhere, writer {k}/4",
                    "sqlite+aiosqlite",
                    "asgi",
                    status(response),
                    seconds,
                )
        await store.aclose()
        store.sync.close()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.db"
        store = SQLAlchemyStore(f"sqlite:///{path}", **run.options(SQLAlchemyStore))
        wsgi_client(store, "wsgi").get("/write?user=ada")
        results: list[tuple[Any, float | None]] = []
        with other_process_holds_the_write_lock(path):
            writers = [
                threading.Thread(
                    target=lambda n=n: results.append(
                        capped_sync(
                            run.cap, lambda: wsgi_client(store, "wsgi").get(f"/write?n={n}")
                        )
                    )
                )
                for n in range(4)
            ]
            for writer in writers:
                writer.start()
            for writer in writers:
                writer.join()
        for k, (response, seconds) in enumerate(sorted(results, key=by_time), start=1):
            run.row(
                f"sqlite locked elsewhere, writer {k}/4",
                "sqlite",
                "wsgi",
                status(response),
                seconds,
            )
        store.sync.close()


def by_time(answer: tuple[Any, float | None]) -> float:
    return float("inf") if answer[1] is None else answer[1]


class other_process_holds_the_write_lock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLD_THE_WRITE_LOCK, str(self.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.process.stdout.readline()

    def __exit__(self, *exc: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)


async def redis_burst(run: Run) -> None:
    proxy = Proxy(PORTS["redis"])
    proxy.up()
    store = run.store("redis", proxy.port, timeout=5.0)  # the default, whatever --timeout
    async with client(asgi_app(store)) as http:
        await http.get("/write", params={"user": "ada"})
        proxy.slow(0.3)
        started = time.perf_counter()
        answers = await asyncio.gather(
            *(capped(run.cap, lambda: http.get("/read")) for _ in range(150))
        )
        took = time.perf_counter() - started
    counts: dict[str, int] = {}
    for response, _ in answers:
        counts[status(response)] = counts.get(status(response), 0) + 1
    summary = " ".join(f"{n}x{code}" for code, n in sorted(counts.items()))
    run.row("150 reads at once, +0.3 s a chunk", "redis", "asgi", summary, took)
    await close(store, proxy)


async def outage(run: Run) -> None:
    for kind in ["postgresql+asyncpg", "mysql+asyncmy", "mysql+aiomysql", "redis"]:
        proxy = Proxy(PORTS[server_of(kind)])
        proxy.up()
        store = run.store(kind, proxy.port)
        async with client(asgi_app(store)) as http:
            await http.get("/write", params={"user": "ada"})
            proxy.down()
            proxy.up()
            response, seconds = await capped(run.cap, lambda: http.get("/read"))
            run.row("cut and restored, first request", kind, "asgi", status(response), seconds)
        await close(store, proxy)
    for kind in ["mysql+asyncmy", "mysql+aiomysql"]:
        await sweep_after_outage(run, kind)
    await asyncio.to_thread(first_blocking_request_after_outage, run, "mysql+pymysql")


async def sweep_after_outage(run: Run, kind: str) -> None:
    proxy = Proxy(PORTS["mysql"])
    proxy.up()
    store = run.store(kind, proxy.port)
    expired = datetime.now(timezone.utc) + timedelta(milliseconds=50)
    await store.save("a" * 64, {"old": True}, expires_at=expired)
    await asyncio.sleep(0.1)
    proxy.down()
    try:
        await store.sweep()
        during = "ok"
    except Exception as error:
        during = type(error).__name__
    proxy.up()
    try:
        after = f"ok, {await store.sweep()} deleted"
    except Exception as error:
        after = type(error).__name__
    run.row("sweep during an outage, then after", kind, "asgi", f"{during}; {after}", "-")
    await close(store, proxy)


def first_blocking_request_after_outage(run: Run, kind: str) -> None:
    proxy = Proxy(PORTS["mysql"])
    proxy.up()
    store = run.store(kind, proxy.port)
    http = wsgi_client(store, "wsgi")
    http.get("/write?user=ada")
    proxy.down()
    proxy.up()
    response, seconds = capped_sync(run.cap, lambda: http.get("/read"))
    run.row("cut and restored, first request", kind, "wsgi", status(response), seconds)
    store.sync.close()
    proxy.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--cap", type=float, default=30.0)
    parser.add_argument("--only", default=",".join(FAULTS))
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the 503s are expected; their log lines are noise
    run = Run(args)
    import lazysession

    print(
        f"lazysession from {Path(lazysession.__file__).parent}; timeout={args.timeout:g} "
        f"where supported; cap {args.cap:g} s"
    )
    steps = {
        "black-hole": black_hole,
        "lock": locks,
        "pool": pool,
        "sqlite": sqlite,
        "redis-burst": redis_burst,
        "outage": outage,
    }
    try:
        for name in args.only.split(","):
            await steps[name](run)
    finally:
        for cleanup in run.cleanups:
            with contextlib.suppress(Exception):  # a table never created
                cleanup()
    print()
    print(machine_line())
    print(markdown_table(["fault", "store", "shell", "answer", "seconds"], run.rows))


if __name__ == "__main__":
    asyncio.run(main())
