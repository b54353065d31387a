"""What is particular to the WSGI middleware: when it commits, the legacy ``write``, its
sweep thread. (The rules every shell keeps are in ``tests/shells``.)"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any
from wsgiref.validate import validator

from werkzeug.test import Client

from lazysession import MemoryStore, Store
from lazysession.wsgi import SessionMiddleware
from tests.helpers import SECRET, Clock
from tests.wsgi.apps import Recorder, app, record


class BufferedClient(Client):
    """Reads each response whole, so the app's iterable is closed as WSGI requires."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["buffered"] = True
        return super().open(*args, **kwargs)


def wrap(store: Store | None, **options: Any) -> tuple[Client, SessionMiddleware, Recorder | None]:
    options.setdefault("sweep_interval", None)
    middleware = SessionMiddleware(validator(app), secret_key=SECRET, store=store, **options)
    recorder = None
    if store is not None:
        recorder = record(store)
        middleware.sync_store = recorder
    return BufferedClient(validator(middleware)), middleware, recorder


def test_an_error_that_replaces_the_response_replaces_the_decision(sync_store: Store) -> None:
    middleware = SessionMiddleware(app, secret_key=SECRET, store=sync_store, sweep_interval=None)
    calls = middleware.sync_store = record(sync_store)
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        started.append((status, headers))  # headers not sent yet: a server replaces them
        return lambda data: None

    body = middleware({"PATH_INFO": "/late-error", "REQUEST_METHOD": "GET"}, start_response)
    assert b"".join(body) == b"{}"
    status, headers = started[-1]
    assert status.startswith("500")
    assert all(name != "Set-Cookie" for name, _ in headers)
    assert calls.calls == {}


def test_a_streaming_body_is_saved_before_its_first_chunk_goes_out() -> None:
    store = MemoryStore()
    middleware = SessionMiddleware(app, secret_key=SECRET, store=store, sweep_interval=None)
    headers: list[tuple[str, str]] = []

    def start_response(status: str, response_headers: Any, exc_info: Any = None) -> Any:
        headers.extend(response_headers)
        return lambda data: None

    body = iter(middleware({"PATH_INFO": "/stream", "REQUEST_METHOD": "GET"}, start_response))
    assert store.sync.count() == 0  # nothing is decided before the app runs
    assert next(body) == b"one "
    assert store.sync.count() == 1  # saved before the server could send the headers
    assert any(name == "Set-Cookie" for name, _ in headers)


def test_the_legacy_write_callable_saves_first(sync_store: Store) -> None:
    http, _, _ = wrap(sync_store)
    http.get("/legacy-write")
    assert http.get("/read").json == {"legacy": "yes"}


def test_the_sweep_thread_starts_with_the_first_request_and_stops_on_close() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    store.sync.save("x" * 64, {"old": True}, expires_at=clock.now + timedelta(seconds=1))
    clock.advance(5)
    http, middleware, _ = wrap(store, sweep_interval=0.02)
    assert middleware.sweeper is not None and not middleware.sweeper.running
    http.get("/untouched")
    deadline = time.monotonic() + 5
    while store.sync.count() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.sync.count() == 0
    middleware.close()
    assert not middleware.sweeper.running


def test_a_session_written_over_wsgi_reads_over_asgi_and_back() -> None:
    """One store, one secret: the two shells share sessions (same core, same cookie)."""
    import anyio
    import httpx

    from tests.helpers import make_app

    store = MemoryStore()
    http, _, _ = wrap(store)
    http.get("/write?user=ada")
    cookie = http.get_cookie("session")
    assert cookie is not None

    async def read_over_asgi() -> Any:
        transport = httpx.ASGITransport(app=make_app(store=store))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/read", headers={"cookie": f"session={cookie.value}"})
            return response.json()

    assert anyio.run(read_over_asgi) == {"user": "ada"}
    assert json.loads(http.get("/read").data) == {"user": "ada"}
