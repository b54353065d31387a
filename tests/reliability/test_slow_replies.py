"""A Redis store call ends within the store's ``timeout`` even when each reply comes
slowly but within the socket timeout: a call that needs several round trips in one step
(a new connection's handshake, then the command; a reconnection after a dropped
connection) waits, round trip after round trip, only for what the call has left, on both
sides and through the blocking shells. Past it, a ``StoreError`` naming the timeout (and
through a shell, the documented 503).

The fault is real: a proxy that adds latency to every chunk, each way, so that a round
trip takes 0.6 of the timeout, well within the socket timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio.to_thread
import pytest

from lazysession import Store, StoreError
from lazysession._expiry import utc_now
from lazysession.stores._limits import GRACE_SHARE
from tests.reliability.faults import Opened, timed, timed_sync, wsgi_client
from tests.reliability.proxy import Proxy

pytestmark = pytest.mark.anyio

TIMEOUT = 0.5
"""The store's ``timeout=`` here: small, so that several round trips add up past it."""
LATENCY = 0.3 * TIMEOUT
"""Added per chunk each way: one round trip takes 0.6 of the timeout."""
SLACK = 0.25 * TIMEOUT
"""What a busy machine may add to a bound."""
READ_BOUND = TIMEOUT + SLACK
"""A call that only reads: the timeout."""
WRITE_BOUND = TIMEOUT * (1 + GRACE_SHARE) + SLACK
"""A call that writes: the timeout, and the grace of a write already sent."""
HANG = 10 * TIMEOUT
"""Past this the call is taken to hang (the test fails rather than waits)."""

SIDES = ["async", "sync"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def through(opened: Opened) -> tuple[Proxy, Store]:
    proxy = opened.proxy("redis")
    return proxy, opened.store("redis", proxy.port, timeout=TIMEOUT)


async def outcome(side: str, store: Store, step: Callable[[Any], Any]) -> tuple[object, float]:
    """What ``step(store)`` (or ``step(store.sync)``) ended with (its answer or its
    error), and the seconds it took."""

    async def run() -> tuple[object, float]:
        started = time.monotonic()
        try:
            if side == "async":
                answer = await step(store)
            else:
                answer = await anyio.to_thread.run_sync(step, store.sync)
        except StoreError as error:
            answer = error
        return answer, time.monotonic() - started

    (answer, took), _ = await timed(run, HANG)
    return answer, took


def timed_out(answer: object) -> bool:
    return isinstance(answer, StoreError) and "timeout" in str(answer)


def read(store: Any) -> Any:
    return store.read("k" * 64)


def save(store: Any) -> Any:
    return store.save("w" * 64, {"cart": 3}, expires_at=utc_now() + timedelta(hours=1))


@pytest.mark.parametrize("side", SIDES)
async def test_a_first_read_over_a_slow_link_fails_within_the_timeout(
    side: str, opened: Opened
) -> None:
    proxy, store = through(opened)
    proxy.slow(LATENCY)
    answer, took = await outcome(side, store, read)
    assert timed_out(answer), f"{side}: {answer!r} after {took:.2f} s"
    assert took < READ_BOUND, f"{side}: {answer!r} after {took:.2f} s"


@pytest.mark.parametrize("side", SIDES)
async def test_a_first_write_over_a_slow_link_fails_within_the_timeout_and_its_grace(
    side: str, opened: Opened
) -> None:
    proxy, store = through(opened)
    proxy.slow(LATENCY)
    answer, took = await outcome(side, store, save)
    assert timed_out(answer), f"{side}: {answer!r} after {took:.2f} s"
    assert took < WRITE_BOUND, f"{side}: {answer!r} after {took:.2f} s"


@pytest.mark.parametrize("side", SIDES)
async def test_a_read_after_a_dropped_connection_over_a_slow_link_fails_within_the_timeout(
    side: str, opened: Opened
) -> None:
    proxy, store = through(opened)
    await outcome(side, store, save)  # at full speed: the pool holds a connection
    proxy.down()  # the server drops it
    proxy.up()
    proxy.slow(LATENCY)
    answer, took = await outcome(side, store, read)
    assert timed_out(answer), f"{side}: {answer!r} after {took:.2f} s"
    assert took < READ_BOUND, f"{side}: {answer!r} after {took:.2f} s"


# -- through the blocking shells --------------------------------------------------------


@pytest.mark.parametrize("shell", ["wsgi", "flask"])
def test_a_request_after_a_dropped_connection_over_a_slow_link_answers_503_within_the_timeout(
    shell: str, opened_blocking: Opened
) -> None:
    proxy, store = through(opened_blocking)
    http = wsgi_client(store, shell)
    assert http.get("/write?user=ada").status_code == 200
    proxy.down()
    proxy.up()
    proxy.slow(LATENCY)
    started = time.monotonic()
    response, _ = timed_sync(lambda: http.get("/read"), HANG)
    took = time.monotonic() - started
    assert response.status_code == 503, f"{response.status_code} after {took:.2f} s"
    assert took < READ_BOUND, f"{response.status_code} after {took:.2f} s"
