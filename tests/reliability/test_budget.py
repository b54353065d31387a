"""One request's store calls share one ``timeout``: the middleware's load and save, each
bounded alone, could otherwise hold a request for twice the bound (and more with the
grace a sent write gets). Calls outside a request's budget (the application's own, the
sweeper's) keep one ``timeout`` each."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lazysession import StoreError
from lazysession._expiry import utc_now
from lazysession.stores._limits import GRACE_SHARE, StoreBudget
from tests.helpers import client
from tests.reliability.faults import (
    ASYNC_KINDS,
    SYNC_KINDS,
    TIMEOUT,
    Opened,
    asgi_app,
    timed,
    timed_sync,
    wsgi_client,
)
from tests.reliability.test_timeouts import logged_in

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _read_fails(store: object) -> float:
    async def read() -> None:
        with pytest.raises(StoreError, match="timeout"):
            await store.read("k" * 64)  # type: ignore[attr-defined]

    _, took = await timed(read)
    return took


@pytest.mark.parametrize("kind", ASYNC_KINDS)
async def test_a_second_call_gets_only_what_the_first_left_of_the_timeout(
    kind: str, opened: Opened
) -> None:
    proxy = opened.proxy(kind)
    store = opened.store(kind, proxy.port)
    await store.save("w" * 64, {"a": 1}, expires_at=utc_now() + timedelta(hours=1))
    proxy.black_hole()
    budget = StoreBudget()
    with budget.spending():
        first = await _read_fails(store)
    with budget.spending():
        second = await _read_fails(store)
    assert first >= TIMEOUT * 0.9
    assert second < TIMEOUT * 0.2


@pytest.mark.parametrize("kind", ASYNC_KINDS)
async def test_calls_outside_a_budget_get_the_whole_timeout_each(kind: str, opened: Opened) -> None:
    proxy = opened.proxy(kind)
    store = opened.store(kind, proxy.port)
    await store.save("w" * 64, {"a": 1}, expires_at=utc_now() + timedelta(hours=1))
    proxy.black_hole()
    budget = StoreBudget()
    with budget.spending():
        await _read_fails(store)
    outside = await _read_fails(store)
    assert outside >= TIMEOUT * 0.9


def _read_fails_blocking(store: object, budget: StoreBudget) -> float:
    def read() -> None:  # in a thread of its own: the budget is spent there
        with budget.spending(), pytest.raises(StoreError):
            store.sync.read("k" * 64)  # type: ignore[attr-defined]

    _, took = timed_sync(read)
    return took


@pytest.mark.parametrize("kind", SYNC_KINDS)
def test_a_second_blocking_call_gets_only_what_the_first_left_of_the_timeout(
    kind: str, opened_blocking: Opened
) -> None:
    proxy = opened_blocking.proxy(kind)
    store = opened_blocking.store(kind, proxy.port)
    store.sync.save("w" * 64, {"a": 1}, expires_at=utc_now() + timedelta(hours=1))
    proxy.black_hole()
    budget = StoreBudget()
    first = _read_fails_blocking(store, budget)
    second = _read_fails_blocking(store, budget)
    assert first >= TIMEOUT * 0.9
    assert second < TIMEOUT * 0.2


# -- through the shells: a request's load and save share the timeout --------------------

LATENCY = 0.45 * TIMEOUT
"""Added per chunk each way: a load (one round trip) takes 0.9 of the timeout, and a save
sent after it would answer at 1.8, past the timeout and the grace a sent write gets."""
SHARED_BOUND = TIMEOUT * (1 + GRACE_SHARE) + 0.25 * TIMEOUT
"""A request's store calls together: the timeout, the grace, and a little slack."""


async def test_a_write_on_a_slow_store_answers_within_one_timeout_in_all(
    opened: Opened,
) -> None:
    proxy = opened.proxy("redis")
    async with client(asgi_app(opened.store("redis", proxy.port))) as http:
        await logged_in(http)
        proxy.slow(LATENCY)
        response, took = await timed(lambda: http.get("/write", params={"cart": "3"}))
    assert response.status_code == 503
    assert took < SHARED_BOUND


@pytest.mark.parametrize("kind", ["postgresql+psycopg", "redis"])
@pytest.mark.parametrize("shell", ["wsgi", "flask"])
def test_a_blocking_write_on_a_slow_store_answers_within_one_timeout_in_all(
    shell: str, kind: str, opened_blocking: Opened
) -> None:
    proxy = opened_blocking.proxy(kind)
    http = wsgi_client(opened_blocking.store(kind, proxy.port), shell)
    assert http.get("/write?user=ada").status_code == 200
    proxy.slow(LATENCY)
    response, took = timed_sync(lambda: http.get("/write?cart=3"))
    assert response.status_code == 503
    assert took < SHARED_BOUND
