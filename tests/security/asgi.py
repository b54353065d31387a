"""A bare ASGI app and a direct caller, for tests that send thousands of requests (no HTTP
client in between)."""

from __future__ import annotations

import json
from typing import Any

from lazysession import SessionMiddleware, Store
from lazysession._types import Receive, Scope, Send
from tests.helpers import SECRET


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/write`` sets ``user``, ``/add`` sets ``n``; every path answers with the session
    as JSON."""
    if scope["path"] == "/write":
        scope["session"]["user"] = "ada"
    elif scope["path"] == "/add":
        scope["session"]["n"] = 1
    body = json.dumps(dict(scope["session"])).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def middleware(store: Store | None, **options: Any) -> SessionMiddleware:
    options.setdefault("secret_key", SECRET)
    return SessionMiddleware(app, store=store, sweep_interval=None, **options)


async def call(
    asgi: SessionMiddleware, cookie: bytes | None = None, path: str = "/read"
) -> tuple[int, dict[str, Any], dict[bytes, bytes]]:
    """Status, session as the app saw it, and the response headers."""
    headers = [(b"host", b"localhost")]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    scope = {"type": "http", "method": "GET", "path": path, "headers": headers}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    await asgi(scope, receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"]), dict(sent[0]["headers"])


async def session_cookie(asgi: SessionMiddleware) -> bytes:
    """The value of the cookie a fresh session was given (logged in as ada)."""
    _, _, headers = await call(asgi, path="/write")
    return headers[b"set-cookie"].split(b";", 1)[0].split(b"=", 1)[1]
