"""The built-in sweep: started by the lifespan (or the first request), never fatal."""

from __future__ import annotations

import logging
from datetime import timedelta

import anyio
import pytest

from lazysession import CookieStore, MemoryStore
from lazysession._sweep import FIRST_SWEEP_WITHIN, JITTER, SweepSchedule
from lazysession.stores._base import OnSwept
from tests.helpers import Clock, RecordingStore, client, lifespan, make_app

pytestmark = pytest.mark.anyio


async def fill_expired(store: MemoryStore, clock: Clock, n: int) -> None:
    for i in range(n):
        await store.save(f"k{i}", {"i": i}, expires_at=clock() + timedelta(seconds=1))
    clock.advance(2)


async def wait_for(condition: object, seconds: float = 5.0) -> None:
    with anyio.fail_after(seconds):
        while not condition():  # type: ignore[operator]
            await anyio.sleep(0.01)


async def test_the_lifespan_starts_the_sweep_and_it_deletes_expired_sessions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    store = RecordingStore(clock=clock)
    await fill_expired(store, clock, 3)
    caplog.set_level(logging.INFO, logger="lazysession")
    async with lifespan(make_app(store=store, clock=clock, sweep_interval=0.05)):
        await wait_for(lambda: store.calls["sweep"] >= 2)
    assert await store.count() == 0
    lines = [r.getMessage() for r in caplog.records if "sweep deleted" in r.getMessage()]
    assert lines[0].startswith("lazysession sweep deleted 3 expired sessions in ")


async def test_shutdown_stops_the_sweep() -> None:
    store = RecordingStore()
    async with lifespan(make_app(store=store, sweep_interval=0.02)):
        await wait_for(lambda: store.calls["sweep"] >= 1)
    done = store.calls["sweep"]
    await anyio.sleep(0.1)
    assert store.calls["sweep"] == done


class FlakyStore(RecordingStore):
    async def sweep(self, *, on_swept: OnSwept | None = None) -> int:
        self.calls["sweep"] += 1
        if self.calls["sweep"] == 1:
            raise ConnectionError("store is down")
        return 0


async def test_a_failing_sweep_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore()
    async with lifespan(make_app(store=store, sweep_interval=0.02)):
        await wait_for(lambda: store.calls["sweep"] >= 2)
        async with client(make_app(store=store)) as http:
            assert (await http.get("/untouched")).status_code == 200
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "store is down" in failures[0].getMessage()


async def test_without_lifespan_the_first_request_starts_the_schedule() -> None:
    clock = Clock()
    store = RecordingStore(clock=clock)
    await fill_expired(store, clock, 2)
    app = make_app(store=store, clock=clock, sweep_interval=0.01)
    async with client(app) as http:
        await http.get("/untouched")
        assert store.calls["sweep"] == 0
        await anyio.sleep(0.02)
        await http.get("/untouched")
    assert store.calls["sweep"] == 1
    assert await store.count() == 0


async def test_a_zero_or_none_interval_disables_the_sweep() -> None:
    for interval in (0, None):
        store = RecordingStore()
        async with lifespan(make_app(store=store, sweep_interval=interval)):
            await anyio.sleep(0.05)
        assert store.calls["sweep"] == 0


class CountingCookieStore(CookieStore):
    sweeps = 0

    async def sweep(self) -> int:
        self.sweeps += 1
        return 0


async def test_the_cookie_store_runs_no_sweep() -> None:
    store = CountingCookieStore()
    async with lifespan(make_app(store=store, sweep_interval=0.01)):
        await anyio.sleep(0.05)
    assert store.sweeps == 0


def test_the_first_sweep_comes_soon_and_later_ones_are_jittered() -> None:
    low = SweepSchedule(300, rand=lambda: 0.0)
    high = SweepSchedule(300, rand=lambda: 0.999999)
    assert FIRST_SWEEP_WITHIN / 2 <= low.first_delay() <= high.first_delay() <= FIRST_SWEEP_WITHIN
    assert low.next_delay() == pytest.approx(300 * (1 - JITTER))
    assert high.next_delay() == pytest.approx(300 * (1 + JITTER), rel=1e-5)


def test_a_short_interval_bounds_the_first_delay() -> None:
    assert SweepSchedule(0.5).first_delay() <= 0.5


def test_a_non_positive_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        SweepSchedule(0)
