"""A sweep that reports (``on_swept``): each owned session it deletes is told
to ``on_swept`` once, with its owner, and anonymous ones never; on every store that
sweeps (memory and SQL, each side), and on SQL through both ways a batch finds its owned
rows (``DELETE ... RETURNING``, or reading the batch before deleting it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from lazysession import Changes, Store
from lazysession._expiry import META_KEY
from lazysession._sweep import takes_on_swept
from lazysession.stores import MemoryStore, RedisStore, SQLAlchemyStore
from lazysession.stores.sql import dialects
from tests.helpers import Clock
from tests.stores.backends import CASES, NATIVE_EXPIRY, StoreCase

pytestmark = pytest.mark.anyio

HOUR = timedelta(hours=1)
SWEEPING = [name for name in CASES if name not in NATIVE_EXPIRY]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # asyncpg and asyncmy run on asyncio only


@pytest.fixture(params=[*SWEEPING, "sqlite+aiosqlite (claimed)", "sqlite/sync (claimed)"])
async def case(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[StoreCase]:
    name: str = request.param
    if name.endswith(" (claimed)"):
        # SQLite without RETURNING (before 3.35), as MySQL: the batch's rows read first.
        monkeypatch.setattr(dialects.SQLite, "swept_batch", lambda self, table: None)
        name = name.removesuffix(" (claimed)")
    made = CASES[name](tmp_path, request)
    try:
        yield made
    finally:
        await made.cleanup()


def key(n: int) -> str:
    return f"{n:064x}"


def session(clock: Clock, owner: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"c": int(clock().timestamp())}
    if owner is not None:
        meta.update(u=owner, a=clock().timestamp())
    return {"n": 1, META_KEY: meta}


async def put(store: Store, clock: Clock, n: int, owner: str | None, lifetime: float) -> None:
    expires = clock() + timedelta(seconds=lifetime)
    await store.save(key(n), session(clock, owner), expires_at=expires)


async def sweep(store: Store, on_swept: Heard) -> int:
    sweeping: Any = store.sweep  # the memory and SQL stores' take on_swept
    deleted: int = await sweeping(on_swept=on_swept)
    return deleted


class Heard:
    """What ``on_swept`` was told, batch by batch."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, str]]] = []

    def __call__(self, owned: list[tuple[str, str]]) -> None:
        self.batches.append(list(owned))

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [pair for batch in self.batches for pair in batch]


def test_the_stores_that_sweep_take_on_swept_and_the_others_do_not() -> None:
    memory = MemoryStore()
    sql = SQLAlchemyStore("sqlite://")
    for sweep in (memory.sweep, memory.sync.sweep, sql.sweep, sql.sync.sweep):
        assert takes_on_swept(sweep)
    assert not takes_on_swept(RedisStore("redis://127.0.0.1:6379/0").sweep)


async def test_an_owned_expired_session_is_reported_with_its_owner(
    open_store: Callable[[int], Store], clock: Clock
) -> None:
    store = open_store(1000)
    await put(store, clock, 1, "alice", 60)
    await put(store, clock, 2, None, 60)  # anonymous: swept, never reported
    await put(store, clock, 3, "bob", 3 * 3600)  # alive: neither
    clock.advance(120)
    heard = Heard()
    assert await sweep(store, heard) == 2
    assert heard.pairs == [(key(1), "alice")]
    assert await store.sessions_of("bob") != []


async def test_a_sweep_of_anonymous_sessions_reports_nothing(
    open_store: Callable[[int], Store], clock: Clock
) -> None:
    store = open_store(1000)
    for n in range(5):
        await put(store, clock, n, None, 60)
    clock.advance(120)
    heard = Heard()
    assert await sweep(store, heard) == 5
    assert heard.batches == []


async def test_each_batch_reports_what_it_deleted_each_session_once(
    open_store: Callable[[int], Store], clock: Clock
) -> None:
    store = open_store(2)  # several batches
    owners = {key(n): f"user{n % 3}" for n in range(7)}
    for n in range(7):
        await put(store, clock, n, owners[key(n)], 60 + n)
    for n in range(7, 12):
        await put(store, clock, n, None, 60 + n)
    clock.advance(600)
    heard = Heard()
    assert await sweep(store, heard) == 12
    assert sorted(heard.pairs) == sorted(owners.items())
    assert all(batch for batch in heard.batches)  # only batches that deleted owned ones


async def test_retired_ids_and_logged_out_sessions_are_not_reported(
    open_store: Callable[[int], Store], clock: Clock
) -> None:
    store = open_store(1000)
    await put(store, clock, 1, "alice", 60)
    await put(store, clock, 2, "alice", 60)
    changes = Changes(set={META_KEY: session(clock, "alice")[META_KEY]})  # a login
    await store.rotate(key(1), key(3), changes, expires_at=clock() + timedelta(seconds=60))
    await store.delete(key(2))  # a logout: its marker holds no owner
    clock.advance(600)
    heard = Heard()
    await sweep(store, heard)
    assert heard.pairs == [(key(3), "alice")]  # the login's new id; the old one is a marker


async def test_replicas_sweeping_at_once_report_each_session_once(
    open_store: Callable[[int], Store], clock: Clock
) -> None:
    first, second = open_store(3), open_store(3)
    owners = {key(n): f"user{n}" for n in range(40)}
    for n in range(40):
        await put(first, clock, n, owners[key(n)], 60)
        await put(first, clock, 100 + n, None, 60)
    clock.advance(120)
    heard = Heard()
    deleted: list[int] = []

    async def replica(store: Store) -> None:
        deleted.append(await sweep(store, heard))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(replica, first)
        tasks.start_soon(replica, second)
    assert sum(deleted) == 80
    assert sorted(heard.pairs) == sorted(owners.items())


async def test_without_on_swept_the_sweep_is_as_before(
    open_store: Callable[[int], Store], clock: Clock
) -> None:
    store = open_store(1000)
    await put(store, clock, 1, "alice", 60)
    clock.advance(120)
    assert await store.sweep() == 1
    assert await store.count() == 0
