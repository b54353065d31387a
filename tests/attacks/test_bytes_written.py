"""What a request costs the store's link: bytes the app sends to the database or Redis,
counted at a proxy in between. The README: a read-only request under an idle timeout
moves the expiry "with an expiry-only update (the data is not rewritten)"; a request
that only read never writes the session back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lazysession import Store
from tests.attacks.apps import real_time_clock, session_with, started
from tests.attacks.lossy_proxy import ReplyLosingProxy
from tests.attacks.test_lost_replies import DRIVERS
from tests.conftest import require_server
from tests.helpers import Clock
from tests.reliability.faults import SERVERS, Opened, server_of
from tests.reliability.race_apps import Shell, make_shell
from tests.stores.backends import server_reachable

pytestmark = pytest.mark.anyio

BIG = 30_000
"""Bytes of one value in the session: what a rewrite would send again."""


@pytest.fixture(params=["redis", "postgresql", "mysql"])
async def counted(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Shell, ReplyLosingProxy, Clock]]:
    """The ASGI app (the bytes are the store's; the shells send the same), idle timeout
    on, over a store reached through a counting proxy."""
    kind = str(request.param)
    url, port = SERVERS[server_of(kind)]
    if not server_reachable(url):
        require_server(f"no {kind} server at {url}")
    opened = Opened()
    proxy = ReplyLosingProxy(port)
    proxy.up()
    opened.proxies.append(proxy)
    store: Store = opened.store(DRIVERS[(kind, "async")], proxy.port, timeout=2.0)
    clock = real_time_clock()
    try:
        yield make_shell("asgi", store, idle_timeout=600, clock=clock), proxy, clock
    finally:
        await opened.close()


async def sent_by(
    proxy: ReplyLosingProxy, shell: Shell, path: str, cookie: str, **params: str
) -> int:
    before = proxy.sent
    reply = await started(shell, path, cookie, **params)
    assert reply.status == 200
    return proxy.sent - before


async def test_a_touch_sends_the_expiry_not_the_data(
    counted: tuple[Shell, ReplyLosingProxy, Clock],
) -> None:
    shell, proxy, clock = counted
    cookie = await session_with(shell, big="x" * BIG, permanent="1")
    await sent_by(proxy, shell, "/read", cookie)  # statements prepared, scripts loaded
    plain = await sent_by(proxy, shell, "/read", cookie)  # a load, nothing written
    clock.advance(400)  # past touch_after: this read moves the expiry
    touching = await sent_by(proxy, shell, "/read", cookie)
    print(f"\n{shell.name}: a read sends {plain} B, a read that touches {touching} B")
    assert touching - plain < BIG / 10, f"the touch sent {touching - plain} B: the data again"


async def test_a_one_key_write_to_a_large_session_sends_at_most_the_session_twice(
    counted: tuple[Shell, ReplyLosingProxy, Clock],
) -> None:
    """Redis merges the keys a request changed; the SQL stores send the writer's whole
    session, with the copy it loaded to compare against (the one-statement merge): the
    bound here is that, so a change that sends more shows."""
    shell, proxy, _ = counted
    cookie = await session_with(shell, big="x" * BIG, permanent="1")
    await sent_by(proxy, shell, "/write", cookie, warm="up")  # statements, scripts loaded
    small = await sent_by(proxy, shell, "/write", cookie, theme="dark")
    print(f"\n{shell.name}: a one-key write to a {BIG:,} B session sends {small:,} B")
    assert small < 2 * BIG + 2_000
