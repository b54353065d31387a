"""The ASGI middleware: drop-in for Starlette's; websockets; no reference cycles. (The
rules every shell keeps are in ``tests/shells``.)"""

from __future__ import annotations

import base64
import gc
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import itsdangerous
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware import sessions as starlette_sessions

from lazysession import ConfigurationError, MemoryStore, SessionMiddleware
from tests.helpers import SECRET, client, make_app

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent.parent


# -- drop-in for Starlette -----------------------------------------------------------------


async def test_starlettes_parameters_keep_their_names_and_defaults() -> None:
    ours = inspect.signature(SessionMiddleware).parameters
    for name, theirs in inspect.signature(starlette_sessions.SessionMiddleware).parameters.items():
        assert name in ours
        if theirs.default is inspect.Parameter.empty:
            continue  # required (secret_key): ours names SessionMiddleware when it is missing
        assert ours[name].default == theirs.default, name


async def test_a_session_written_by_starlettes_middleware_stays_valid() -> None:
    value = itsdangerous.TimestampSigner(SECRET).sign(base64.b64encode(b'{"user": "ada"}'))
    async with client(make_app()) as http:
        response = await http.get("/read", headers={"cookie": f"session={value.decode()}"})
    assert response.json() == {"user": "ada"}


async def test_cookie_attributes_follow_the_settings() -> None:
    app = make_app(
        session_cookie="sid",
        max_age=60,
        path="/",
        same_site="strict",
        https_only=True,
        domain="testserver",
        partitioned=True,
    )
    async with client(app) as http:
        cookie = (await http.get("/write", params={"a": "1"})).headers["set-cookie"]
    assert cookie.startswith("sid=")
    for attribute in (
        "Max-Age=60",
        "path=/",
        "httponly",
        "samesite=strict",
        "secure",
        "domain=testserver",
        "partitioned",
    ):
        assert attribute in cookie


# -- other scopes --------------------------------------------------------------------------


async def test_a_websocket_reads_the_session_of_its_handshake() -> None:
    store = MemoryStore()
    app = make_app(store=store)
    async with client(app) as http:
        await http.get("/write", params={"user": "ada"})
        cookie = http.cookies["session"]
    sent: list[dict[str, Any]] = []
    inbox = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {
        "type": "websocket",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "headers": [(b"cookie", f"session={cookie}".encode())],
        "scheme": "ws",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1),
        "subprotocols": [],
        "asgi": {"version": "3.0"},
        "root_path": "",
    }
    await app(scope, receive, send)
    texts = [m["text"] for m in sent if m["type"] == "websocket.send"]
    assert json.loads(texts[0]) == {"user": "ada"}


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_requests_leave_no_reference_cycles_behind(loop: str) -> None:
    """Counted in a process of its own: in this one, what earlier tests left (a thread,
    a callback on the shared event loop) may free cycles of its own meanwhile."""
    code = (
        "import anyio; from tests.asgi.test_middleware import "
        "requests_leave_no_reference_cycles_behind as check; "
        f"anyio.run(check, backend={loop!r})"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


async def requests_leave_no_reference_cycles_behind() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["session"]["n"] = scope["session"].get("n", 0) + 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = SessionMiddleware(app, secret_key=SECRET, store=MemoryStore(), sweep_interval=None)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    await middleware(dict(scope), receive, send)  # warm caches
    gc.collect()
    gc.disable()
    try:
        for _ in range(50):
            await middleware(dict(scope), receive, send)
        assert gc.collect() == 0
    finally:
        gc.enable()


# -- start-up ------------------------------------------------------------------------------


async def test_a_bad_option_fails_the_lifespan_startup_with_its_message() -> None:
    bad = Middleware(SessionMiddleware, secret_key=SECRET, same_site="bogus")  # type: ignore[arg-type]
    app = Starlette(middleware=[bad])  # Starlette builds it at the first call: this one
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    with pytest.raises(ConfigurationError, match="same_site='bogus'"):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert sent == [
        {
            "type": "lifespan.startup.failed",
            "message": "lazysession._errors.ConfigurationError: same_site='bogus': "
            "expected 'lax', 'strict' or 'none'",
        }
    ]


async def test_a_bad_option_built_outside_a_lifespan_raises_at_once() -> None:
    with pytest.raises(ConfigurationError, match="same_site='bogus'"):
        SessionMiddleware(make_app(), secret_key=SECRET, same_site="bogus")  # type: ignore[arg-type]
