"""The apps the served benchmarks run under uvicorn, configured by environment variables
(each uvicorn worker imports this module afresh).

``BENCH_STACK``: bare, pass-through, lazy-minimum (the floors), starlette, starsessions,
starsessions-redis, lazysession-memory, lazysession-sqlite, lazysession-redis,
lazysession-postgresql. ``BENCH_STORE_URL`` and ``BENCH_SWEEP_INTERVAL`` tune the
lazysession stores.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks, a package

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

SECRET = os.environ.get("BENCH_SECRET", "benchmark-secret-" + "x" * 20)


async def untouched(request: Request) -> Response:
    return PlainTextResponse("ok")


def session_of(request: Request) -> dict[str, Any]:
    """The session, or a throwaway dict for the bare app (the same handler work)."""
    return request.session if "session" in request.scope else {}


async def read(request: Request) -> Response:
    return JSONResponse({"user": session_of(request).get("user")})


async def write(request: Request) -> Response:
    session = session_of(request)
    session["user"] = "ada"
    session["hits"] = int(session.get("hits", 0)) + 1
    return JSONResponse({"hits": session["hits"]})


async def count(request: Request) -> Response:
    n = int(request.session.get("n", 0)) + 1
    request.session["n"] = n
    return JSONResponse({"n": n})


async def api(request: Request) -> Response:
    # Token clients' handlers write to the session, as auth code does.
    request.session["token_seen"] = request.headers.get("authorization", "")[-8:]
    return JSONResponse({"ok": True})


async def ephemeral(request: Request) -> Response:
    from lazysession import get_session

    session = get_session(request)
    session["short"] = True
    session.set_lifetime(1)
    return JSONResponse({"ok": True})


ROUTES = [
    Route("/untouched", untouched),
    Route("/read", read),
    Route("/write", write),
    Route("/count", count),
    Route("/api", api),
    Route("/ephemeral", ephemeral),
]


def middleware(stack: str) -> list[Middleware]:
    if stack == "bare":
        return []
    if stack in ("pass-through", "lazy-minimum"):
        from benchmarks._floors import LazyMinimum, PassThrough

        return [Middleware(PassThrough if stack == "pass-through" else LazyMinimum)]
    if stack == "starlette":
        from starlette.middleware.sessions import SessionMiddleware as StarletteSessions

        return [Middleware(StarletteSessions, secret_key=SECRET)]
    if stack.startswith("starsessions"):
        import starsessions

        store: Any
        if stack == "starsessions-redis":
            from starsessions.stores.redis import RedisStore as StarRedis

            store = StarRedis(os.environ.get("BENCH_STORE_URL", "redis://127.0.0.1:6379/0"))
        else:
            store = starsessions.InMemoryStore()
        return [
            Middleware(
                starsessions.SessionMiddleware,
                store=store,
                cookie_https_only=False,
                lifetime=14 * 24 * 3600,
            ),
            Middleware(starsessions.SessionAutoloadMiddleware),
        ]
    from lazysession import MemoryStore, RedisStore, SessionMiddleware, SQLAlchemyStore

    url = os.environ.get("BENCH_STORE_URL", "")
    makers: dict[str, Callable[[], Any]] = {
        "lazysession-cookie": lambda: None,  # the session in the signed cookie, as Starlette
        "lazysession-memory": MemoryStore,
        "lazysession-sqlite": lambda: SQLAlchemyStore(url or "sqlite+aiosqlite:///bench.db"),
        "lazysession-redis": lambda: RedisStore(
            url or "redis://127.0.0.1:6379/0", prefix=os.environ.get("BENCH_PREFIX", "bench:")
        ),
        "lazysession-postgresql": lambda: SQLAlchemyStore(
            url, table_name=os.environ.get("BENCH_TABLE", "lazysession_sessions")
        ),
    }
    lazy_store = makers[stack]()
    interval = float(os.environ.get("BENCH_SWEEP_INTERVAL", "300"))
    return [
        Middleware(
            SessionMiddleware, secret_key=SECRET, store=lazy_store, sweep_interval=interval or None
        )
    ]


app = Starlette(routes=ROUTES, middleware=middleware(os.environ.get("BENCH_STACK", "bare")))
