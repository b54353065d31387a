"""The sweep predicate, property-tested: a sweep at ``now`` deletes exactly the sessions
whose expiry is at or before ``now``, and never a live one."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lazysession import MemoryStore, Store
from lazysession.stores import SQLAlchemyStore
from tests.helpers import Clock

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)

offsets = st.lists(st.integers(min_value=-10_000, max_value=10_000), min_size=1, max_size=60)
elapsed = st.integers(min_value=0, max_value=10_000)


async def sweep_and_check(store: Store, clock: Clock, seconds: list[int], later: int) -> None:
    for i, offset in enumerate(seconds):
        await store.save(f"{i:064d}", {"i": i}, expires_at=T0 + timedelta(seconds=offset))
    clock.now = T0 + timedelta(seconds=later)
    expired = sum(offset <= later for offset in seconds)
    assert await store.sweep() == expired
    assert await store.count() == len(seconds) - expired
    for i, offset in enumerate(seconds):
        assert (await store.load(f"{i:064d}") is None) == (offset <= later)


@given(offsets, elapsed)
def test_the_memory_sweep_deletes_exactly_the_expired(seconds: list[int], later: int) -> None:
    clock = Clock()
    clock.now = T0
    anyio.run(sweep_and_check, MemoryStore(clock=clock), clock, seconds, later)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(offsets, elapsed)
def test_the_sql_sweep_deletes_exactly_the_expired(
    tmp_path: Path, seconds: list[int], later: int
) -> None:
    clock = Clock()
    clock.now = T0
    database = tmp_path / f"{abs(hash((tuple(seconds), later)))}.db"
    store = SQLAlchemyStore(f"sqlite+aiosqlite:///{database}", clock=clock, batch_size=7)

    async def go() -> None:
        try:
            await sweep_and_check(store, clock, seconds, later)
        finally:
            await store.aclose()

    anyio.run(go)
