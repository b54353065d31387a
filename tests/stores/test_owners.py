"""The owner index, run unchanged on every back end and on each store's sync side: a
session has an owner only when a login named one (its metadata's ``OWNER``), and the
store can list, revoke and revoke all of an owner's sessions."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio
import pytest

from lazysession import Changes, Merge, Store
from lazysession._expiry import META_KEY
from lazysession._identity import handle_of
from tests.helpers import Clock
from tests.stores.backends import NATIVE_EXPIRY, StoreCase

pytestmark = pytest.mark.anyio

HOUR = timedelta(hours=1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # asyncpg and asyncmy run on asyncio only


def key(n: int) -> str:
    return f"{n:064x}"


def meta(clock: Clock, owner: str | None = None, device: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"c": int(clock().timestamp())}
    if owner is not None:
        out["u"] = owner
        out["a"] = clock().timestamp()
    if device is not None:
        out["d"] = device
    return out


async def log_in(
    store: Store, clock: Clock, n: int, owner: str, device: str | None = None, **data: Any
) -> str:
    """A session saved whole by a login that named ``owner``; its handle."""
    session = {**data, META_KEY: meta(clock, owner, device)}
    await store.save(key(n), session, expires_at=clock() + HOUR)
    return handle_of(key(n))


async def log_in_by_rotation(store: Store, clock: Clock, old: int, new: int, owner: str) -> Merge:
    """A login from an anonymous session: it moves to a new id, now owned."""
    changes = Changes(set={"user": owner, META_KEY: meta(clock, owner)})
    return await store.rotate(key(old), key(new), changes, expires_at=clock() + HOUR)


async def handles(store: Store, owner: str) -> list[str]:
    return [info.handle for info in await store.sessions_of(owner)]


async def test_an_owner_with_no_session_lists_none(store: Store) -> None:
    assert await store.sessions_of("nobody") == []


async def test_a_session_saved_by_a_login_is_listed_as_its_owners(
    store: Store, clock: Clock
) -> None:
    handle = await log_in(store, clock, 1, "alice", user="alice")
    assert await handles(store, "alice") == [handle]
    assert await handles(store, "bob") == []


async def test_an_anonymous_session_is_listed_for_nobody(store: Store, clock: Clock) -> None:
    await store.save(key(1), {"cart": [1], META_KEY: meta(clock)}, expires_at=clock() + HOUR)
    assert await handles(store, "") == []
    assert await handles(store, "None") == []


async def test_a_login_by_rotation_lists_the_new_id_not_the_old(store: Store, clock: Clock) -> None:
    await store.save(key(1), {"cart": [1], META_KEY: meta(clock)}, expires_at=clock() + HOUR)
    assert await log_in_by_rotation(store, clock, 1, 2, "alice") is Merge.APPLIED
    assert await handles(store, "alice") == [handle_of(key(2))]


async def test_a_second_login_moves_the_listing_to_the_newest_id(
    store: Store, clock: Clock
) -> None:
    await log_in(store, clock, 1, "alice")
    assert await log_in_by_rotation(store, clock, 1, 2, "alice") is Merge.APPLIED
    assert await handles(store, "alice") == [handle_of(key(2))]


async def test_an_update_keeps_the_owner(store: Store, clock: Clock) -> None:
    handle = await log_in(store, clock, 1, "alice")
    changes = Changes(set={"n": 1, META_KEY: meta(clock, "alice")})
    assert await store.update(key(1), changes, expires_at=clock() + HOUR) is Merge.APPLIED
    assert await handles(store, "alice") == [handle]


async def test_the_listing_carries_creation_expiry_and_device(store: Store, clock: Clock) -> None:
    created = clock().replace(microsecond=0)
    await log_in(store, clock, 1, "alice", device="Firefox on Linux")
    clock.advance(30)
    (info,) = await store.sessions_of("alice")
    assert info.created_at == created
    assert info.expires_at == created + HOUR
    assert info.device == "Firefox on Linux"
    assert info.last_seen == created


async def test_a_device_is_none_unless_the_login_recorded_one(store: Store, clock: Clock) -> None:
    await log_in(store, clock, 1, "alice")
    (info,) = await store.sessions_of("alice")
    assert info.device is None


async def test_a_touch_or_a_write_marks_the_session_seen(store: Store, clock: Clock) -> None:
    await log_in(store, clock, 1, "alice")
    await log_in(store, clock, 2, "alice")
    clock.advance(10)
    assert await store.touch(key(1), expires_at=clock() + HOUR)
    (first, _) = await store.sessions_of("alice")
    assert first.handle == handle_of(key(1))
    assert first.last_seen == clock()
    assert first.expires_at == clock() + HOUR
    clock.advance(10)
    changes = Changes(set={"n": 1, META_KEY: meta(clock, "alice")})
    assert await store.update(key(2), changes, expires_at=clock() + HOUR)
    assert await handles(store, "alice") == [handle_of(key(2)), handle_of(key(1))]


async def test_an_expired_session_is_never_listed_swept_or_not(
    case: StoreCase, store: Store, clock: Clock
) -> None:
    await log_in(store, clock, 1, "alice")
    clock.advance(HOUR.total_seconds())
    assert await store.sessions_of("alice") == []
    if case.name not in NATIVE_EXPIRY:
        await store.sweep()
    assert await store.sessions_of("alice") == []


async def test_a_deleted_session_is_not_listed(store: Store, clock: Clock) -> None:
    await log_in(store, clock, 1, "alice")
    kept = await log_in(store, clock, 2, "alice")
    await store.delete(key(1))
    assert await handles(store, "alice") == [kept]


async def test_revoke_ends_the_named_session_as_a_logout_does(store: Store, clock: Clock) -> None:
    gone = await log_in(store, clock, 1, "alice", user="alice")
    kept = await log_in(store, clock, 2, "alice", user="alice")
    assert await store.revoke("alice", gone) is True
    assert await handles(store, "alice") == [kept]
    assert await store.load(key(1)) is None
    record = await store.read(key(1))
    assert record is None or record.retired
    changes = Changes(set={"n": 1, META_KEY: meta(clock, "alice")})
    assert await store.update(key(1), changes, expires_at=clock() + HOUR) is Merge.GONE
    assert await store.load(key(1)) is None


async def test_revoke_of_an_unknown_handle_ends_nothing(store: Store, clock: Clock) -> None:
    kept = await log_in(store, clock, 1, "alice")
    assert await store.revoke("alice", handle_of(key(99))) is False
    assert await handles(store, "alice") == [kept]


async def test_revoke_leaves_another_owners_session_with_that_handle_alone(
    store: Store, clock: Clock
) -> None:
    bobs = await log_in(store, clock, 1, "bob", user="bob")
    await log_in(store, clock, 2, "alice")
    assert await store.revoke("alice", bobs) is False
    assert await handles(store, "bob") == [bobs]
    assert await store.load(key(1)) is not None


async def test_revoke_all_ends_every_session_of_the_owner_and_says_how_many(
    store: Store, clock: Clock
) -> None:
    for n in range(3):
        await log_in(store, clock, n, "alice")
    bobs = await log_in(store, clock, 10, "bob")
    assert await store.revoke_all("alice") == 3
    assert await store.sessions_of("alice") == []
    for n in range(3):
        assert await store.load(key(n)) is None
    assert await handles(store, "bob") == [bobs]
    assert await store.revoke_all("alice") == 0


async def test_revoke_all_keeps_the_session_named_keep(store: Store, clock: Clock) -> None:
    await log_in(store, clock, 1, "alice")
    this_device = await log_in(store, clock, 2, "alice")
    await log_in(store, clock, 3, "alice")
    assert await store.revoke_all("alice", keep=this_device) == 2
    assert await handles(store, "alice") == [this_device]
    assert await store.load(key(2)) is not None


async def test_a_rotation_from_a_revoked_session_creates_nothing(
    store: Store, clock: Clock
) -> None:
    await log_in(store, clock, 1, "alice")
    await store.revoke_all("alice")
    assert await log_in_by_rotation(store, clock, 1, 2, "alice") is Merge.GONE
    assert await store.load(key(2)) is None
    assert await store.sessions_of("alice") == []


async def test_a_store_opened_elsewhere_sees_the_same_index(
    open_store: Callable[..., Store], clock: Clock
) -> None:
    first, second = open_store(), open_store()
    handle = await log_in(first, clock, 1, "alice")
    assert await handles(second, "alice") == [handle]
    assert await second.revoke("alice", handle)
    assert await first.sessions_of("alice") == []


async def test_logins_and_writes_racing_revoke_all_leave_no_ended_session_and_lose_no_kept_one(
    open_store: Callable[..., Store], clock: Clock
) -> None:
    """Sessions that existed before ``revoke_all`` began end, whatever writes race it;
    logins racing it either end or are listed; logins after it live and are listed."""
    stores = [open_store() for _ in range(4)]
    before = list(range(0, 12))
    for n in before:
        await log_in(stores[n % 4], clock, n, "alice", user="alice")
    for n in range(100, 112):
        anonymous = {"cart": [n], META_KEY: meta(clock)}
        await stores[n % 4].save(key(n), anonymous, expires_at=clock() + HOUR)
    ended: list[int] = []
    order = random.Random(7)

    async def write(n: int) -> None:
        await anyio.sleep(order.random() / 100)
        changes = Changes(set={"n": n, META_KEY: meta(clock, "alice")})
        await stores[n % 4].update(key(n), changes, expires_at=clock() + HOUR)

    async def login(n: int) -> None:
        await anyio.sleep(order.random() / 100)
        await log_in_by_rotation(stores[n % 4], clock, n, n + 100, "alice")

    async def revoke() -> None:
        await anyio.sleep(0.002)
        ended.append(await stores[0].revoke_all("alice"))

    async with anyio.create_task_group() as tasks:
        for n in before:
            tasks.start_soon(write, n)
        for n in range(100, 112):
            tasks.start_soon(login, n)
        tasks.start_soon(revoke)
    for n in before:
        assert await stores[n % 4].load(key(n)) is None, n
    listed = set(await handles(stores[1], "alice"))
    alive = {handle_of(key(n + 100)) for n in range(100, 112) if await stores[2].load(key(n + 100))}
    assert listed == alive
    after = [await log_in(stores[n % 4], clock, n, "alice") for n in range(300, 304)]
    assert set(await handles(stores[3], "alice")) == alive | set(after)
    assert ended[0] >= len(before)
