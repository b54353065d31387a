"""One request's store calls share one ``timeout``: the middleware's load and save, each
bounded alone, could otherwise hold a request for twice the bound (and more with the
grace a sent write gets). Calls outside a request's budget (the application's own, the
sweeper's) keep one ``timeout`` each."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lazysession import StoreError
from lazysession._expiry import utc_now
from lazysession.stores._limits import StoreBudget
from tests.reliability.faults import (
    ASYNC_KINDS,
    SYNC_KINDS,
    TIMEOUT,
    Opened,
    timed,
    timed_sync,
)

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


@pytest.mark.parametrize("kind", [kind for kind in SYNC_KINDS if kind != "redis"])
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
