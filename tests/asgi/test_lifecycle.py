"""A remember-me lifetime, the warning for a cookie sent without Secure, and forged cookies,
through the ASGI middleware (login, logout and idle lifetimes are in ``tests/shells``)."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lazysession import MemoryStore
from tests.helpers import Clock, RecordingStore, client, make_app

pytestmark = pytest.mark.anyio


async def test_a_remember_me_lifetime_is_honoured_by_the_sweep() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    async with client(make_app(store=store, clock=clock, max_age=3600)) as http:
        await http.get("/login", params={"remember": "86400"})
        clock.advance(7200)  # past max_age, within the session's own lifetime
        assert (await http.get("/read")).json() == {"user": "ada"}
        assert await store.sweep() == 0
        clock.advance(86400)
        assert await store.sweep() == 1


async def test_a_cookie_sent_to_a_public_host_without_https_only_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with client(make_app(store=MemoryStore())) as http:
        await http.get("/untouched", headers={"host": "shop.example.com"})
        assert not caplog.records  # no cookie sent yet
        await http.get("/write", params={"a": "1"}, headers={"host": "shop.example.com"})
        await http.get("/write", params={"a": "2"}, headers={"host": "shop.example.com"})
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "https_only" in warnings[0].getMessage()


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1", "[::1]:8000", "app.localhost"])
async def test_local_hosts_and_https_only_do_not_warn(
    host: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with client(make_app(store=MemoryStore())) as http:
        await http.get("/write", params={"a": "1"}, headers={"host": host})
    async with client(make_app(store=MemoryStore(), https_only=True)) as http:
        await http.get("/write", params={"a": "1"}, headers={"host": "shop.example.com"})
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


cookie_headers = st.one_of(
    st.text(max_size=300).map(lambda v: f"session={v}"),
    st.binary(max_size=300).map(lambda b: "session=" + b.decode("latin-1")),
    st.lists(
        st.text(alphabet="abcdefABCDEF0123456789._-", max_size=120), min_size=2, max_size=6
    ).map(lambda vs: "; ".join(f"session={v}" for v in vs)),
    st.text(min_size=5000, max_size=9000).map(lambda v: f"session={v}"),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cookie_headers)
def test_any_forged_cookie_gives_an_empty_session_and_no_store_call(header: str) -> None:
    store = RecordingStore()
    raw = header.encode("latin-1", errors="replace")

    async def go() -> Any:
        async with client(make_app(store=store)) as http:
            return await http.get("/read", headers={b"cookie": raw})

    response = anyio.run(go)
    assert response.status_code == 200
    assert response.json() == {}
    assert store.calls == {}
