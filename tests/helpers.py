"""Apps, stores and drivers shared by the middleware tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from lazysession import Changes, MemoryStore, SessionMiddleware, get_session
from lazysession.stores import Merge, Record
from lazysession.stores._base import OnSwept

SECRET = "test-secret-" + "x" * 24


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class RecordingStore(MemoryStore):
    """A memory store that counts the calls the middleware makes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: Counter[str] = Counter()

    async def read(self, session_id: str) -> Record | None:
        self.calls["load"] += 1
        return await super().read(session_id)

    async def touch(self, session_id: str, *, expires_at: datetime, base: object = None) -> bool:
        self.calls["touch"] += 1
        return await super().touch(session_id, expires_at=expires_at, base=base)

    async def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        self.calls["save"] += 1
        await super().save(session_id, data, expires_at=expires_at)

    async def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        self.calls["update"] += 1
        return await super().update(session_id, changes, expires_at=expires_at)

    async def rotate(
        self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime
    ) -> Merge:
        self.calls["rotate"] += 1
        return await super().rotate(old_id, new_id, changes, expires_at=expires_at)

    async def delete(self, session_id: str) -> None:
        self.calls["delete"] += 1
        await super().delete(session_id)

    async def sweep(self, *, on_swept: OnSwept | None = None) -> int:
        self.calls["sweep"] += 1
        return await super().sweep(on_swept=on_swept)


async def untouched(request: Request) -> Response:
    return PlainTextResponse("ok")


async def read(request: Request) -> Response:
    return JSONResponse(dict(request.session))


async def slow_read(request: Request) -> Response:
    seen = dict(request.session)
    await anyio.sleep(float(request.query_params.get("seconds", "0.2")))
    return JSONResponse(seen)


async def write(request: Request) -> Response:
    for key, value in request.query_params.items():
        request.session[key] = value
    return JSONResponse(dict(request.session))


async def clear(request: Request) -> Response:
    request.session.clear()
    return PlainTextResponse("cleared")


async def login(request: Request) -> Response:
    session = get_session(request)
    session.regenerate()
    session["user"] = request.query_params.get("user", "ada")
    if request.query_params.get("remember"):
        session.set_lifetime(int(request.query_params["remember"]))
    return PlainTextResponse("in")


async def logout(request: Request) -> Response:
    get_session(request).invalidate()
    return PlainTextResponse("out")


async def fail(request: Request) -> Response:
    request.session["half"] = "done"
    return PlainTextResponse("broken", status_code=500)


async def vary(request: Request) -> Response:
    request.session["a"] = "1"
    return PlainTextResponse("ok", headers={"Vary": "Accept-Encoding"})


async def stream(request: Request) -> Response:
    request.session["streamed"] = "yes"

    async def body() -> AsyncIterator[bytes]:
        yield b"one "
        yield b"two"

    return StreamingResponse(body())


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(dict(websocket.session))
    await websocket.close()


ROUTES = [
    Route("/untouched", untouched),
    Route("/read", read),
    Route("/slow-read", slow_read),
    Route("/write", write, methods=["GET", "POST"]),
    Route("/clear", clear),
    Route("/login", login),
    Route("/logout", logout),
    Route("/fail", fail),
    Route("/vary", vary),
    Route("/stream", stream),
    WebSocketRoute("/ws", socket),
]


def make_app(**options: Any) -> Starlette:
    options.setdefault("secret_key", SECRET)
    return Starlette(routes=ROUTES, middleware=[Middleware(SessionMiddleware, **options)])


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Run the ASGI lifespan protocol around the block, as a server would."""
    to_app, app_inbox = anyio.create_memory_object_stream[dict[str, Any]](4)
    app_outbox, from_app = anyio.create_memory_object_stream[dict[str, Any]](4)

    async def receive() -> dict[str, Any]:
        return await app_inbox.receive()

    async def send(message: Any) -> None:
        await app_outbox.send(dict(message))

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(app, scope, receive, send)
        await to_app.send({"type": "lifespan.startup"})
        assert (await from_app.receive())["type"] == "lifespan.startup.complete"
        try:
            yield
        finally:
            await to_app.send({"type": "lifespan.shutdown"})
            with anyio.fail_after(5):
                assert (await from_app.receive())["type"] == "lifespan.shutdown.complete"
