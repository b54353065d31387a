#!/usr/bin/env python3
"""Replay the traffic that filled real session tables, and count what each library stores.

100,000 requests: Bearer-token SDK clients and workers (most of the traffic; their
handlers write to the session, as auth code does), health checks, anonymous readers, and
a few hundred browsers that log in and come back with their cookie. The app is called
in-process. Stacks: lazysession on SQLite and (when reachable) PostgreSQL, starsessions
(memory store, autoload), and an "eager" middleware that saves a row for every request
without a cookie, as the middlewares behind those reports did. Then the clock moves past
expiry and lazysession's built-in sweep empties its table. The chart follows the sessions
each library holds as the requests go by, and after the sweep.

    python benchmarks/flood.py [--requests 100000] [--browsers 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import sqlite3
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable, MutableMapping, Sized
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks, a package

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from benchmarks._chart import RESULTS, line_chart
from benchmarks._server import reachable
from benchmarks._table import machine_line, markdown_table
from lazysession import SessionMiddleware, SQLAlchemyStore

POSTGRES = os.environ.get("LAZYSESSION_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SECRET = "flood-secret-" + "x" * 24
Message = MutableMapping[str, Any]


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def page(request: Request) -> Response:
    return PlainTextResponse(str(request.session.get("user")))


async def login(request: Request) -> Response:
    request.session["user"] = request.query_params.get("user", "someone")
    return PlainTextResponse("in")


async def api(request: Request) -> Response:
    request.session["client"] = request.headers.get("authorization", "")[-12:]  # auth code
    return PlainTextResponse("ok")


ROUTES = [
    Route("/health", health),
    Route("/page", page),
    Route("/login", login),
    Route("/api", api),
]


class EagerSessionMiddleware:
    """The behaviour behind the reports: every request without a cookie gets a new
    session row and a cookie, whether or not the handler used the session."""

    def __init__(self, app: Any, path: str) -> None:
        self.app = app
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")  # the same tuning lazysession's store gets
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS eager (id TEXT PRIMARY KEY, data TEXT)")

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        cookie = dict(scope["headers"]).get(b"cookie", b"")
        if b"eager=" in cookie:
            session_id = cookie.split(b"eager=")[1].split(b";")[0].decode()
        else:
            session_id = secrets.token_urlsafe(32)
            self.db.execute("INSERT INTO eager VALUES (?, '{}')", (session_id,))
        scope["session"] = {}

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append(
                    (b"set-cookie", f"eager={session_id}; path=/".encode())
                )
            await send(message)

        await self.app(scope, receive, wrapped)

    async def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM eager").fetchone()[0])


def traffic(total: int, browsers: int, seed: int = 7) -> list[tuple[str, str | None]]:
    """(path, kind) for each request; kind "browser:N" marks a browser's own requests."""
    rng = random.Random(seed)
    plan: list[tuple[str, str | None]] = [("/login", f"browser:{b}") for b in range(browsers)]
    while len(plan) < total:
        roll = rng.random()
        if roll < 0.62:
            plan.append(("/api", "bearer"))
        elif roll < 0.80:
            plan.append(("/health", None))
        elif roll < 0.92:
            plan.append(("/page", None))
        else:
            plan.append(("/page", f"browser:{rng.randrange(browsers)}"))
    return plan


Count = Callable[[], Awaitable[int]]
Curve = list[tuple[float, float]]
SAMPLES = 40
"""Points on each library's curve of sessions stored over the flood."""


async def replay(
    app: Any, plan: list[tuple[str, str | None]], cookie_name: str, count: Count
) -> Curve:
    """Send every request of ``plan``; the sessions stored (``count``) as it goes."""
    jar: dict[str, bytes] = {}
    every = max(1, len(plan) // SAMPLES)
    curve: Curve = [(0, await count())]

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    for done, (path, kind) in enumerate(plan, start=1):
        headers = [(b"host", b"127.0.0.1")]
        if kind == "bearer":
            headers.append((b"authorization", b"Bearer sdk-" + secrets.token_hex(4).encode()))
        elif kind is not None and kind in jar:
            headers.append((b"cookie", jar[kind]))
        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers,
            "scheme": "http",
            "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 1),
            "root_path": "",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
        }

        async def send(message: Message, kind: str | None = kind) -> None:
            if message["type"] == "http.response.start" and kind and kind.startswith("browser"):
                for name, value in message.get("headers", []):
                    if name == b"set-cookie" and value.startswith(cookie_name.encode() + b"="):
                        jar[kind] = value.split(b";")[0]

        await app(scope, receive, send)
        if done % every == 0 or done == len(plan):
            curve.append((done, await count()))
    return curve


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


async def lazysession_row(
    name: str,
    url: str,
    plan: list[tuple[str, str | None]],
    size_of: Callable[[SQLAlchemyStore], int],
) -> tuple[list[object], Curve]:
    clock = Clock()
    table = f"lazysession_flood_{uuid.uuid4().hex[:8]}"
    store = SQLAlchemyStore(url, table_name=table, clock=clock)
    app = Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(
                SessionMiddleware, secret_key=SECRET, store=store, sweep_interval=None, clock=clock
            )
        ],
    )
    curve = await replay(app, plan, "session", store.count)
    rows = await store.count()
    size = size_of(store)
    clock.now += timedelta(days=15)  # past max_age (14 days)
    swept = await store.sweep()
    after = await store.count()
    curve.append((after_expiry(plan), after))
    with store.check_sync().begin() as conn:  # a SQLite file: the stdlib driver serves it
        conn.execute(sa.text(f"DROP TABLE {table}"))
    await store.aclose()
    per_thousand = rows / len(plan) * 1000
    return [name, f"{rows:,}", f"{size:,}", f"{per_thousand:.2f}", f"{swept:,} -> {after}"], curve


def after_expiry(plan: list[tuple[str, str | None]]) -> float:
    """Where the chart shows the stores once the clock has passed expiry."""
    return len(plan) * 1.08


def count_of(held: Sized) -> Count:
    """How many ``held`` holds, as a count to sample."""

    async def count() -> int:
        return len(held)

    return count


def sqlite_size(store: SQLAlchemyStore) -> int:
    engine = sa.create_engine(store._url.set(drivername="sqlite"))  # type: ignore[union-attr]
    with engine.connect() as conn:
        used = conn.exec_driver_sql(
            "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'lazysession_flood%' "
            "OR name LIKE '%lazysession_flood%'"
        ).scalar()
    engine.dispose()
    return int(used or 0)


def postgres_size(store: SQLAlchemyStore) -> int:
    engine = sa.create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        size = conn.execute(
            sa.text("SELECT pg_total_relation_size(:t)"), {"t": store.table.name}
        ).scalar_one()
    engine.dispose()
    return int(size)


async def main(args: argparse.Namespace) -> None:
    plan = traffic(args.requests, args.browsers)
    rows: list[list[object]] = []
    curves: dict[str, Curve] = {}
    with tempfile.TemporaryDirectory() as tmp:
        lazy = [
            ("lazysession (SQLite)", f"sqlite+aiosqlite:///{Path(tmp) / 'flood.db'}", sqlite_size)
        ]
        if reachable(POSTGRES, 5432):
            lazy.append(
                (
                    "lazysession (PostgreSQL)",
                    POSTGRES.replace("postgresql://", "postgresql+asyncpg://", 1),
                    postgres_size,
                )
            )
        else:
            print(
                f"PostgreSQL at {POSTGRES} is not reachable: its row is left out", file=sys.stderr
            )
        for name, url, size_of in lazy:
            row, curves[name] = await lazysession_row(name, url, plan, size_of)
            rows.append(row)
        try:
            import starsessions

            memory = starsessions.InMemoryStore()
            app = Starlette(
                routes=ROUTES,
                middleware=[
                    Middleware(
                        starsessions.SessionMiddleware,
                        store=memory,
                        cookie_https_only=False,
                        lifetime=14 * 24 * 3600,
                    ),
                    Middleware(starsessions.SessionAutoloadMiddleware),
                ],
            )
            curve = await replay(app, plan, "session", count_of(memory.data))
            held = len(memory.data)
            curves["starsessions (memory)"] = [*curve, (after_expiry(plan), held)]
            size = sum(len(k) + len(v) for k, v in memory.data.items())
            rows.append(
                [
                    "starsessions (memory)",
                    f"{held:,}",
                    f"{size:,} (keys+values)",
                    f"{held / len(plan) * 1000:.2f}",
                    "no sweep",
                ]
            )
        except ImportError:
            print("starsessions is not installed: its row is left out", file=sys.stderr)
        eager_path = str(Path(tmp) / "eager.db")
        eager = EagerSessionMiddleware(Starlette(routes=ROUTES), eager_path)
        curve = await replay(eager, plan, "eager", eager.count)
        held = await eager.count()
        curves["eager save (SQLite)"] = [*curve, (after_expiry(plan), held)]
        size = eager.db.execute(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
        ).fetchone()[0]
        rows.append(
            [
                "eager save (SQLite)",
                f"{held:,}",
                f"{size:,}",
                f"{held / len(plan) * 1000:.2f}",
                "no sweep",
            ]
        )
    print(f"## The flood replay ({machine_line()})\n")
    kinds = {kind.split(":")[0] if kind else "health/anonymous" for _, kind in plan}
    print(
        f"{len(plan):,} requests ({', '.join(sorted(kinds))}); {args.browsers} browsers log in. "
        "Storage bytes: table and indexes.\n"
    )
    print(
        markdown_table(
            [
                "stack",
                "sessions stored",
                "bytes",
                "per 1,000 requests",
                "after expiry: swept -> left",
            ],
            rows,
        )
    )
    chart = line_chart(
        RESULTS / "flood.png",
        f"Sessions stored over {len(plan):,} requests, then past expiry",
        curves,
        "requests replayed",
        "sessions stored (log scale)",
        event=(len(plan) * 1.04, "clock +15 days, sweep"),
    )
    if chart is not None:
        print(f"\nChart: {chart}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--browsers", type=int, default=300)
    asyncio.run(main(parser.parse_args()))
