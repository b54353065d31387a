"""The app ``chaos.py`` serves under uvicorn: a session store reached through the proxy
that the driver cuts, slows and restores. ``CHAOS_STORE_URL`` names the store;
``CHAOS_TIMEOUT`` bounds each store call (seconds)."""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections import deque
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from lazysession import SessionMiddleware, get_session
from lazysession.stores import RedisStore, SQLAlchemyStore, Store

SECRET = "chaos-secret-" + "x" * 24
URL = os.environ.get("CHAOS_STORE_URL", "sqlite+aiosqlite:///chaos.db")
TIMEOUT = float(os.environ.get("CHAOS_TIMEOUT", "2"))


def _store() -> Store:
    kind: Any = RedisStore if URL.startswith("redis") else SQLAlchemyStore
    options: dict[str, Any] = {}
    if "timeout" in inspect.signature(kind).parameters:
        options["timeout"] = TIMEOUT
    if kind is SQLAlchemyStore:
        options["table_name"] = os.environ.get("CHAOS_TABLE", "lazysession_chaos")
    else:
        options["prefix"] = os.environ.get("CHAOS_PREFIX", "lazysession-chaos:")
    made: Store = kind(URL, **options)
    return made


async def write(request: Request) -> Response:
    for key, value in request.query_params.items():
        request.session[key] = value
    return PlainTextResponse("ok")


async def pop(request: Request) -> Response:
    request.session.pop(request.query_params["key"], None)
    return PlainTextResponse("ok")


async def login(request: Request) -> Response:
    session = get_session(request)
    session.regenerate()
    session["user"] = request.query_params.get("user", "someone")
    return PlainTextResponse("in")


async def logout(request: Request) -> Response:
    get_session(request).invalidate()
    return PlainTextResponse("out")


async def read(request: Request) -> Response:
    return JSONResponse(dict(request.session))


async def api(request: Request) -> Response:
    request.session["token_user"] = "sdk"  # auth code that writes: never persisted
    return PlainTextResponse("api")


async def ping(request: Request) -> Response:
    return PlainTextResponse("pong")


class LoopLag:
    """How late this worker's event loop ran: a task that sleeps ``TICK`` seconds over
    and over, noting by how much each sleep overran (the time every other task waited
    for the loop), for the last ``KEPT`` ticks."""

    TICK = 0.01
    KEPT = 2000

    def __init__(self) -> None:
        self.ticks: deque[tuple[float, float]] = deque(maxlen=self.KEPT)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.TICK)
            now = time.perf_counter()
            self.ticks.append((now, now - before - self.TICK))

    def worst_since(self, started: float) -> float:
        """The longest the loop was late, in one go, since ``started`` (the newest
        ticks only: this runs for every answer)."""
        worst = 0.0
        for at, late in reversed(self.ticks):
            if at < started:
                break
            worst = max(worst, late)
        return worst


class ServerTiming:
    """Outside the session middleware: how long the server took to start its answer
    (``Server-Timing: app;dur=<ms>``), the store calls and the handler included, the
    queues before the app (the socket, uvicorn, the client's own loop) left out; and the
    longest the worker's event loop ran late meanwhile (``lag;dur=<ms>``), which a
    deadline's timer waits for too."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lag = LoopLag()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.lag.start()
        started = time.perf_counter()

        async def timed(message: Any) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000
                late = self.lag.worst_since(started) * 1000
                timing = f"app;dur={took:.1f}, lag;dur={late:.1f}".encode()
                message["headers"] = [*message.get("headers", []), (b"server-timing", timing)]
            await send(message)

        await self.app(scope, receive, timed)


sessions = Starlette(
    routes=[
        Route("/write", write, methods=["POST"]),
        Route("/pop", pop, methods=["POST"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/read", read),
        Route("/api", api),
        Route("/ping", ping),
    ],
    middleware=[Middleware(SessionMiddleware, secret_key=SECRET, store=_store())],
)
app = ServerTiming(sessions)
