"""The ASGI middleware: drop-in for Starlette's, lazy, and Bearer-aware."""

from __future__ import annotations

import base64
import gc
import inspect
import json
from typing import Any

import itsdangerous
import pytest
from starlette.middleware import sessions as starlette_sessions

from lazysession import MemoryStore, SessionMiddleware, never
from tests.helpers import SECRET, Clock, RecordingStore, client, make_app

pytestmark = pytest.mark.anyio


# -- drop-in for Starlette -----------------------------------------------------------------


async def test_starlettes_parameters_keep_their_names_and_defaults() -> None:
    ours = inspect.signature(SessionMiddleware).parameters
    for name, theirs in inspect.signature(starlette_sessions.SessionMiddleware).parameters.items():
        assert name in ours
        if theirs.default is inspect.Parameter.empty:
            continue  # required (secret_key): ours names SessionMiddleware when it is missing
        assert ours[name].default == theirs.default, name


async def test_the_default_keeps_the_session_in_the_cookie() -> None:
    async with client(make_app()) as http:
        response = await http.get("/write", params={"user": "ada"})
        assert "session=" in response.headers["set-cookie"]
        assert (await http.get("/read")).json() == {"user": "ada"}


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


# -- lazy: nothing for requests that do not write ------------------------------------------


async def test_an_untouched_route_gets_no_cookie_no_vary_and_no_store_call() -> None:
    store = RecordingStore()
    async with client(make_app(store=store)) as http:
        response = await http.get("/untouched")
    assert "set-cookie" not in response.headers
    assert "vary" not in response.headers
    assert store.calls == {}


async def test_reading_without_a_cookie_varies_but_creates_nothing() -> None:
    store = RecordingStore()
    async with client(make_app(store=store)) as http:
        response = await http.get("/read")
    assert response.json() == {}
    assert response.headers["vary"] == "Cookie"
    assert "set-cookie" not in response.headers
    assert store.calls == {}
    assert await store.count() == 0


async def test_the_first_write_creates_one_session_and_a_cookie() -> None:
    store = RecordingStore()
    async with client(make_app(store=store)) as http:
        response = await http.get("/write", params={"user": "ada"})
        assert "set-cookie" in response.headers
        assert store.calls == {"save": 1}
        assert (await http.get("/read")).json() == {"user": "ada"}
    assert await store.count() == 1


async def test_the_cookie_carries_only_a_signed_id_not_the_data() -> None:
    async with client(make_app(store=MemoryStore())) as http:
        response = await http.get("/write", params={"secret": "hunter2"})
    value = response.cookies["session"]
    assert "hunter2" not in value
    assert "hunter2" not in base64.urlsafe_b64decode(value.split(".")[0] + "==").decode("latin-1")


async def test_a_request_that_only_reads_never_writes_back() -> None:
    store = RecordingStore()
    async with client(make_app(store=store)) as http:
        await http.get("/write", params={"n": "1"})
        response = await http.get("/read")
    assert "set-cookie" not in response.headers
    assert store.calls == {"save": 1, "load": 1}


async def test_a_tampered_cookie_gives_an_empty_session_and_a_200() -> None:
    store = RecordingStore()
    async with client(make_app(store=store)) as http:
        await http.get("/write", params={"n": "1"})
        good = http.cookies["session"]
        http.cookies.clear()
        middle = len(good) // 4  # inside the id: every bit there is signed
        tampered = good[:middle] + ("B" if good[middle] == "A" else "A") + good[middle + 1 :]
        response = await http.get("/read", headers={"cookie": f"session={tampered}"})
    assert response.status_code == 200
    assert response.json() == {}
    assert store.calls["load"] == 0


@pytest.mark.parametrize("value", ["", "null", "garbage", "a.b.c", "\u00e9\u00e8", "x" * 8000])
async def test_a_garbage_cookie_gives_an_empty_session(value: str) -> None:
    async with client(make_app(store=MemoryStore())) as http:
        response = await http.get("/read", headers={b"cookie": f"session={value}".encode()})
    assert response.status_code == 200
    assert response.json() == {}


async def test_an_expired_session_is_not_adopted_and_a_write_mints_a_new_id() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    async with client(make_app(store=store, clock=clock, max_age=60)) as http:
        await http.get("/write", params={"user": "ada"})
        first = http.cookies["session"]
        clock.advance(61)
        assert (await http.get("/read")).json() == {}
        await http.get("/write", params={"user": "bob"})
        assert http.cookies["session"] != first


async def test_clearing_the_session_deletes_it_and_expires_the_cookie() -> None:
    store = RecordingStore()
    async with client(make_app(store=store)) as http:
        await http.get("/write", params={"user": "ada"})
        response = await http.get("/clear")
        assert "Max-Age=0" in response.headers["set-cookie"]
        assert "session" not in http.cookies
    assert store.calls["delete"] == 1
    assert await store.count() == 0


async def test_a_server_error_response_persists_nothing() -> None:
    store = RecordingStore()
    async with client(make_app(store=store)) as http:
        response = await http.get("/fail")
    assert response.status_code == 500
    assert "set-cookie" not in response.headers
    assert store.calls["save"] == 0


async def test_vary_cookie_joins_an_existing_vary_header() -> None:
    async with client(make_app(store=MemoryStore())) as http:
        response = await http.get("/vary")
    assert response.headers["vary"] == "Accept-Encoding, Cookie"


async def test_a_streaming_response_saves_before_its_headers_go_out() -> None:
    store = MemoryStore()
    async with client(make_app(store=store)) as http:
        response = await http.get("/stream")
        assert response.text == "one two"
        assert (await http.get("/read")).json() == {"streamed": "yes"}


# -- Bearer traffic and skip_persistence ----------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_a_bearer_request_never_creates_a_session(scheme: str) -> None:
    store = RecordingStore()
    async with client(make_app(store=store)) as http:
        response = await http.get(
            "/write", params={"user": "ada"}, headers={"authorization": f"{scheme} token"}
        )
    assert response.json() == {"user": "ada"}  # the handler still had a working session
    assert "set-cookie" not in response.headers
    assert store.calls == {}
    assert await store.count() == 0


async def test_basic_auth_is_not_bearer_and_persists() -> None:
    store = MemoryStore()
    async with client(make_app(store=store)) as http:
        await http.get("/write", params={"a": "1"}, headers={"authorization": "Basic Zm9vOmJhcg=="})
    assert await store.count() == 1


async def test_a_bearer_request_with_a_session_cookie_reads_it_but_changes_nothing() -> None:
    store = RecordingStore()
    async with client(make_app(store=store)) as http:
        await http.get("/write", params={"user": "ada"})
        bearer = {"authorization": "Bearer token"}
        seen = await http.get("/write", params={"user": "mallory"}, headers=bearer)
        cleared = await http.get("/clear", headers=bearer)
        after = await http.get("/read")
    assert seen.json() == {"user": "mallory"}
    assert "set-cookie" not in seen.headers and "set-cookie" not in cleared.headers
    assert after.json() == {"user": "ada"}
    assert store.calls["save"] == 1 and store.calls["delete"] == 0


async def test_skip_persistence_takes_any_predicate() -> None:
    store = MemoryStore()
    app = make_app(store=store, skip_persistence=lambda r: r.method == "POST")
    async with client(app) as http:
        await http.post("/write", params={"a": "1"})
        assert await store.count() == 0
        await http.get("/write", params={"a": "1"})
        assert await store.count() == 1


async def test_skip_persistence_never_persists_bearer_requests_too() -> None:
    store = MemoryStore()
    async with client(make_app(store=store, skip_persistence=never)) as http:
        await http.get("/write", params={"a": "1"}, headers={"authorization": "Bearer t"})
    assert await store.count() == 1


async def test_the_predicate_is_not_consulted_when_nothing_is_written() -> None:
    def explode(request: object) -> bool:
        raise AssertionError("consulted")

    async with client(make_app(store=MemoryStore(), skip_persistence=explode)) as http:
        assert (await http.get("/read")).status_code == 200


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


async def test_requests_leave_no_reference_cycles_behind() -> None:
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
