"""The store contract, run unchanged on every back end and on each store's sync side."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio
import pytest

from lazysession import Changes, Merge, SessionNotSerializable, SessionTooLarge, Store
from lazysession._expiry import META_KEY, ORIGIN
from lazysession.stores import RETIRED_MEMORY
from tests.helpers import Clock
from tests.stores.backends import CASES, NATIVE_EXPIRY, StoreCase

pytestmark = pytest.mark.anyio

HOUR = timedelta(hours=1)
SWEEPING = [name for name in CASES if name not in NATIVE_EXPIRY]  # stores that sweep rows


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # asyncpg and asyncmy run on asyncio only


async def test_an_unknown_session_loads_as_none(store: Store) -> None:
    assert await store.load("0" * 64) is None


async def test_a_saved_session_loads_back_with_its_json_types(store: Store, clock: Clock) -> None:
    data: dict[str, Any] = {
        "user": "ada",
        "n": 2**53,
        "pi": 3.25,
        "ok": True,
        "none": None,
        "nested": {"list": [1, "two", {"three": 3}]},
        "text": "h\u00e9llo \u2603 \U0001f600",
    }
    await store.save("a" * 64, data, expires_at=clock() + HOUR)
    assert await store.load("a" * 64) == data


async def test_save_replaces_the_whole_session(store: Store, clock: Clock) -> None:
    await store.save("a" * 64, {"a": 1, "b": 2}, expires_at=clock() + HOUR)
    await store.save("a" * 64, {"c": 3}, expires_at=clock() + HOUR)
    assert await store.load("a" * 64) == {"c": 3}
    assert await store.count() == 1


async def test_sessions_are_kept_apart_by_id(store: Store, clock: Clock) -> None:
    await store.save("a" * 64, {"who": "a"}, expires_at=clock() + HOUR)
    await store.save("b" * 64, {"who": "b"}, expires_at=clock() + HOUR)
    assert await store.load("a" * 64) == {"who": "a"}
    assert await store.load("b" * 64) == {"who": "b"}


async def test_delete_removes_a_session(store: Store, clock: Clock) -> None:
    await store.save("a" * 64, {"a": 1}, expires_at=clock() + HOUR)
    await store.delete("a" * 64)
    assert await store.load("a" * 64) is None
    assert await store.count() == 0


async def test_deleting_an_unknown_session_is_not_an_error(store: Store) -> None:
    await store.delete("f" * 64)


async def test_an_expired_session_is_never_loaded_even_before_a_sweep(
    store: Store, clock: Clock
) -> None:
    await store.save("a" * 64, {"a": 1}, expires_at=clock() + timedelta(seconds=10))
    clock.advance(9.999)
    assert await store.load("a" * 64) == {"a": 1}
    clock.advance(0.001)
    assert await store.load("a" * 64) is None
    assert await store.count() == 1  # held until swept


async def test_saving_an_expired_session_again_revives_it(store: Store, clock: Clock) -> None:
    await store.save("a" * 64, {"a": 1}, expires_at=clock() + timedelta(seconds=1))
    clock.advance(5)
    await store.save("a" * 64, {"a": 2}, expires_at=clock() + HOUR)
    assert await store.load("a" * 64) == {"a": 2}


async def test_sweep_deletes_exactly_the_expired_sessions(
    store: Store, clock: Clock, case: StoreCase
) -> None:
    for i in range(5):
        await store.save(f"{i:064d}", {"i": i}, expires_at=clock() + timedelta(seconds=10))
    for i in range(5, 8):
        await store.save(f"{i:064d}", {"i": i}, expires_at=clock() + HOUR)
    clock.advance(11)
    if case.native_expiry:
        assert await store.sweep() == 0  # the server drops them itself
    else:
        assert await store.sweep() == 5
        assert await store.count() == 3
    assert all([await store.load(f"{i:064d}") is None for i in range(5)])
    assert await store.load(f"{7:064d}") == {"i": 7}


async def test_sweeping_nothing_returns_zero(store: Store, clock: Clock) -> None:
    assert await store.sweep() == 0
    await store.save("a" * 64, {"a": 1}, expires_at=clock() + HOUR)
    assert await store.sweep() == 0


@pytest.mark.parametrize("case", SWEEPING, indirect=True)
async def test_sweep_works_through_many_batches(
    open_store: Callable[..., Store], clock: Clock
) -> None:
    store = open_store(batch_size=7)
    for i in range(30):
        await store.save(f"{i:064d}", {"i": i}, expires_at=clock() + timedelta(seconds=i + 1))
    clock.advance(26)  # expiry at 1..30 s: 26 are due
    assert await store.sweep() == 26
    assert await store.count() == 4


@pytest.mark.parametrize("case", SWEEPING, indirect=True)
async def test_concurrent_sweepers_delete_each_row_once(
    open_store: Callable[..., Store], clock: Clock
) -> None:
    writer = open_store()
    for i in range(60):
        await writer.save(f"{i:064d}", {"i": i}, expires_at=clock() + timedelta(seconds=1 + i % 3))
    await writer.save("f" * 64, {"live": True}, expires_at=clock() + HOUR)
    clock.advance(10)
    sweepers = [open_store(batch_size=5) for _ in range(4)]
    counts: list[int] = []

    async def sweep(store: Store) -> None:
        counts.append(await store.sweep())

    async with anyio.create_task_group() as tasks:
        for sweeper in sweepers:
            tasks.start_soon(sweep, sweeper)
    assert sum(counts) == 60
    assert await writer.count() == 1


async def test_a_value_that_is_not_json_fails_and_leaves_the_stored_session(
    store: Store, clock: Clock
) -> None:
    await store.save("a" * 64, {"a": 1}, expires_at=clock() + HOUR)
    with pytest.raises(SessionNotSerializable, match="'when'"):
        await store.save("a" * 64, {"a": 2, "when": clock()}, expires_at=clock() + HOUR)
    assert await store.load("a" * 64) == {"a": 1}


async def test_what_one_store_instance_saves_another_reads(
    open_store: Callable[..., Store], clock: Clock
) -> None:
    await open_store().save("a" * 64, {"shared": True}, expires_at=clock() + HOUR)
    assert await open_store().load("a" * 64) == {"shared": True}


async def test_read_gives_the_expiry_that_was_saved(store: Store, clock: Clock) -> None:
    expires = clock() + timedelta(minutes=5, microseconds=250_000)
    await store.save("a" * 64, {"a": 1}, expires_at=expires)
    record = await store.read("a" * 64)
    assert record is not None
    assert record.data == {"a": 1}
    assert abs((record.expires_at - expires).total_seconds()) < 0.001


async def test_touch_moves_the_expiry_and_keeps_the_data(store: Store, clock: Clock) -> None:
    await store.save("a" * 64, {"a": 1}, expires_at=clock() + timedelta(seconds=10))
    await store.touch("a" * 64, expires_at=clock() + timedelta(seconds=100))
    clock.advance(50)
    record = await store.read("a" * 64)
    assert record is not None
    assert record.data == {"a": 1}
    assert abs((record.expires_at - (clock() + timedelta(seconds=50))).total_seconds()) < 0.001


async def test_touch_never_brings_a_session_back(store: Store, clock: Clock) -> None:
    await store.touch("b" * 64, expires_at=clock() + HOUR)
    assert await store.load("b" * 64) is None
    await store.save("a" * 64, {"a": 1}, expires_at=clock() + timedelta(seconds=1))
    clock.advance(2)
    await store.touch("a" * 64, expires_at=clock() + HOUR)
    assert await store.load("a" * 64) is None


async def test_update_merges_changes_onto_the_stored_copy(store: Store, clock: Clock) -> None:
    await store.save("a" * 64, {"a": 1, "b": 2, "c": 3}, expires_at=clock() + HOUR)
    changes = Changes(set={"b": 20, "d": 4}, removed=frozenset({"c"}))
    assert await store.update("a" * 64, changes, expires_at=clock() + HOUR) is Merge.APPLIED
    assert await store.load("a" * 64) == {"a": 1, "b": 20, "d": 4}


async def test_an_update_based_on_the_current_copy_gives_the_writers_session(
    store: Store, clock: Clock
) -> None:
    await store.save("a" * 64, {"a": 1}, expires_at=clock() + HOUR)
    loaded = await store.read("a" * 64)
    assert loaded is not None
    changes = Changes(set={"b": 2}, whole='{"a": 1, "b": 2}', base=loaded.version)
    assert await store.update("a" * 64, changes, expires_at=clock() + HOUR) is Merge.APPLIED
    assert await store.load("a" * 64) == {"a": 1, "b": 2}


async def test_an_update_based_on_a_stale_copy_still_merges(store: Store, clock: Clock) -> None:
    await store.save("a" * 64, {"a": 1}, expires_at=clock() + HOUR)
    first, second = await store.read("a" * 64), await store.read("a" * 64)
    assert first is not None and second is not None
    one = Changes(set={"b": 2}, whole='{"a": 1, "b": 2}', base=first.version)
    other = Changes(set={"c": 3}, whole='{"a": 1, "c": 3}', base=second.version)
    assert await store.update("a" * 64, one, expires_at=clock() + HOUR) is Merge.APPLIED
    assert await store.update("a" * 64, other, expires_at=clock() + HOUR) is Merge.APPLIED
    assert await store.load("a" * 64) == {"a": 1, "b": 2, "c": 3}


async def test_update_merges_onto_a_session_holding_a_nul_character(
    store: Store, clock: Clock
) -> None:
    await store.save("a" * 64, {"a": "x\u0000y"}, expires_at=clock() + HOUR)
    changes = Changes(set={"b": "\u0000"})
    assert await store.update("a" * 64, changes, expires_at=clock() + HOUR) is Merge.APPLIED
    assert await store.load("a" * 64) == {"a": "x\u0000y", "b": "\u0000"}


async def test_update_never_brings_a_session_back(store: Store, clock: Clock) -> None:
    changes = Changes(set={"a": 1})
    assert await store.update("b" * 64, changes, expires_at=clock() + HOUR) is Merge.GONE
    assert await store.load("b" * 64) is None
    await store.save("a" * 64, {"a": 0}, expires_at=clock() + timedelta(seconds=1))
    clock.advance(2)
    assert await store.update("a" * 64, changes, expires_at=clock() + HOUR) is Merge.GONE
    assert await store.load("a" * 64) is None


async def test_concurrent_updates_of_different_keys_all_survive(
    open_store: Callable[..., Store], clock: Clock
) -> None:
    writer = open_store()
    await writer.save("a" * 64, {"start": True}, expires_at=clock() + HOUR)
    stores = [open_store() for _ in range(4)]

    async def set_key(i: int) -> None:
        changes = Changes(set={f"k{i}": i})
        assert await stores[i % 4].update("a" * 64, changes, expires_at=clock() + HOUR)

    async with anyio.create_task_group() as tasks:
        for i in range(20):
            tasks.start_soon(set_key, i)
    loaded = await writer.load("a" * 64)
    assert loaded == {"start": True, **{f"k{i}": i for i in range(20)}}


# -- no lost write: removing keys is a merge, only an empty result ends a session ----------


async def test_removing_the_last_key_keeps_the_keys_others_wrote_meanwhile(
    store: Store, clock: Clock
) -> None:
    await store.save("a" * 64, {"flash": "hi"}, expires_at=clock() + HOUR)
    meanwhile = Changes(set={"cart": 3})
    assert await store.update("a" * 64, meanwhile, expires_at=clock() + HOUR) is Merge.APPLIED
    popped = Changes(removed=frozenset({"flash"}), empty=True)
    assert await store.update("a" * 64, popped, expires_at=clock() + HOUR) is Merge.APPLIED
    assert await store.load("a" * 64) == {"cart": 3}


async def test_a_merge_that_leaves_no_key_deletes_the_session(store: Store, clock: Clock) -> None:
    await store.save("a" * 64, {"flash": "hi"}, expires_at=clock() + HOUR)
    popped = Changes(removed=frozenset({"flash"}), empty=True)
    assert await store.update("a" * 64, popped, expires_at=clock() + HOUR) is Merge.EMPTIED
    assert await store.load("a" * 64) is None
    assert await store.count() == 0
    record = await store.read("a" * 64)
    assert record is not None and record.retired


async def test_an_ended_session_leaves_its_id_retired_for_a_while(
    store: Store, clock: Clock
) -> None:
    await store.save("a" * 64, {"user": "ada"}, expires_at=clock() + HOUR)
    await store.delete("a" * 64)
    record = await store.read("a" * 64)
    assert record is not None and record.retired and record.data == {}
    assert not record.rotated  # no successor whose cookie the browser could hold
    late = Changes(set={"cart": 1})
    assert await store.update("a" * 64, late, expires_at=clock() + HOUR) is Merge.GONE
    clock.advance(RETIRED_MEMORY + 1)
    assert await store.read("a" * 64) is None
    assert await store.count() == 0


async def test_a_rotation_ends_the_id_an_earlier_failed_rotation_left_live(
    store: Store, clock: Clock
) -> None:
    """A rotation that could not retire its old id leaves it live, named as the new
    session's origin (a logout ends both). Once that session rotates again (a second
    login), its origin is one step further back, where no logout looks: the rotation
    ends it."""
    first = "3" * 64
    await store.save(first, {"cart": 1, META_KEY: {"c": 1}}, expires_at=clock() + HOUR)
    left_live = {"cart": 1, "user": "ada", META_KEY: {"c": 1, ORIGIN: first}}
    await store.save(OLD, left_live, expires_at=clock() + HOUR)
    assert await store.rotate(OLD, NEW, Changes(), expires_at=clock() + HOUR)
    assert await store.load(first) is None, "the id left live by the first login lived on"
    await store.delete(NEW)  # the logout: every id of the session ends
    assert await store.load(NEW) is None and await store.load(OLD) is None


async def test_an_ended_id_is_claimed_once_and_then_reads_as_rotated(
    store: Store, clock: Clock
) -> None:
    await store.save(OLD, {"user": "ada"}, expires_at=clock() + HOUR)
    await store.delete(OLD)
    assert await store.claim(OLD, NEW) is True
    assert await store.claim(OLD, "c" * 64) is False  # a second request at once: refused
    record = await store.read(OLD)
    assert record is not None and record.retired and record.rotated and record.data == {}


async def test_a_live_rotated_or_unknown_id_cannot_be_claimed(store: Store, clock: Clock) -> None:
    await store.save(OLD, {"user": "ada"}, expires_at=clock() + HOUR)
    assert await store.claim(OLD, "c" * 64) is False  # live: its session stays
    assert await store.load(OLD) == {"user": "ada"}
    await store.rotate(OLD, NEW, Changes(), expires_at=clock() + HOUR)
    assert await store.claim(OLD, "c" * 64) is False  # rotated: its successor stays named
    assert await store.load(NEW) == {"user": "ada"}
    assert await store.claim("d" * 64, "c" * 64) is False  # never stored


async def test_an_ended_id_is_not_claimed_once_forgotten(store: Store, clock: Clock) -> None:
    await store.save(OLD, {"user": "ada"}, expires_at=clock() + HOUR)
    await store.delete(OLD)
    clock.advance(RETIRED_MEMORY + 1)
    assert await store.claim(OLD, NEW) is False


async def test_metadata_alone_does_not_keep_a_session(store: Store, clock: Clock) -> None:
    meta = {META_KEY: {"c": 1}}
    await store.save("a" * 64, {"flash": "hi", **meta}, expires_at=clock() + HOUR)
    popped = Changes(set=meta, removed=frozenset({"flash"}), empty=True)
    assert await store.update("a" * 64, popped, expires_at=clock() + HOUR) is Merge.EMPTIED
    assert await store.load("a" * 64) is None


async def test_an_emptying_merge_based_on_a_stale_copy_keeps_the_newer_keys(
    store: Store, clock: Clock
) -> None:
    await store.save("a" * 64, {"flash": "hi"}, expires_at=clock() + HOUR)
    loaded = await store.read("a" * 64)
    assert loaded is not None
    meanwhile = Changes(set={"cart": 3})
    assert await store.update("a" * 64, meanwhile, expires_at=clock() + HOUR) is Merge.APPLIED
    popped = Changes(removed=frozenset({"flash"}), whole="{}", base=loaded.version, empty=True)
    assert await store.update("a" * 64, popped, expires_at=clock() + HOUR) is Merge.APPLIED
    assert await store.load("a" * 64) == {"cart": 3}


# -- no resurrected logout: a whole-session save never re-creates an id -------------------


async def test_a_replace_replaces_a_live_session(store: Store, clock: Clock) -> None:
    await store.save("a" * 64, {"a": 1}, expires_at=clock() + HOUR)
    cleared = Changes(set={"b": 2}, replace=True, whole='{"b":2}')
    assert await store.update("a" * 64, cleared, expires_at=clock() + HOUR) is Merge.APPLIED
    assert await store.load("a" * 64) == {"b": 2}


async def test_a_replace_never_recreates_a_deleted_session(store: Store, clock: Clock) -> None:
    await store.save("a" * 64, {"user": "ada"}, expires_at=clock() + HOUR)
    await store.delete("a" * 64)  # a logout
    cleared = Changes(set={"b": 2}, replace=True, whole='{"b":2}')
    assert await store.update("a" * 64, cleared, expires_at=clock() + HOUR) is Merge.GONE
    assert await store.load("a" * 64) is None
    assert await store.count() == 0


# -- rotation --------------------------------------------------------------------------------

OLD, NEW = "1" * 64, "2" * 64


async def test_rotate_moves_the_latest_data_to_the_new_id(store: Store, clock: Clock) -> None:
    await store.save(OLD, {"cart": 1}, expires_at=clock() + HOUR)
    meanwhile = Changes(set={"theme": "dark"})
    assert await store.update(OLD, meanwhile, expires_at=clock() + HOUR) is Merge.APPLIED
    login = Changes(set={"user": "ada"})
    assert await store.rotate(OLD, NEW, login, expires_at=clock() + HOUR) is Merge.APPLIED
    assert await store.load(NEW) == {"cart": 1, "theme": "dark", "user": "ada"}


async def test_a_rotated_id_reads_as_rotated_with_no_data(store: Store, clock: Clock) -> None:
    await store.save(OLD, {"user": "ada"}, expires_at=clock() + HOUR)
    await store.rotate(OLD, NEW, Changes(), expires_at=clock() + HOUR)
    record = await store.read(OLD)
    assert record is not None and record.retired and record.data == {}
    assert record.rotated
    assert await store.load(OLD) is None


async def test_a_logout_with_a_rotated_id_leaves_it_retired_with_no_successor(
    store: Store, clock: Clock
) -> None:
    await store.save(OLD, {"user": "ada"}, expires_at=clock() + HOUR)
    await store.rotate(OLD, NEW, Changes(), expires_at=clock() + HOUR)
    await store.delete(OLD)
    record = await store.read(OLD)
    assert record is not None and record.retired and not record.rotated
    assert await store.load(NEW) is None


async def test_a_rotated_id_takes_no_write_and_no_touch(store: Store, clock: Clock) -> None:
    await store.save(OLD, {"user": "ada"}, expires_at=clock() + HOUR)
    await store.rotate(OLD, NEW, Changes(), expires_at=clock() + HOUR)
    late = Changes(set={"injected": True})
    assert await store.update(OLD, late, expires_at=clock() + HOUR) is Merge.GONE
    cleared = Changes(set={"injected": True}, replace=True, whole='{"injected":true}')
    assert await store.update(OLD, cleared, expires_at=clock() + HOUR) is Merge.GONE
    assert await store.touch(OLD, expires_at=clock() + HOUR) is False
    assert await store.load(NEW) == {"user": "ada"}
    assert await store.load(OLD) is None


async def test_a_rotated_id_is_forgotten_after_the_rotation_memory(
    store: Store, clock: Clock
) -> None:
    await store.save(OLD, {"user": "ada"}, expires_at=clock() + HOUR)
    await store.rotate(OLD, NEW, Changes(), expires_at=clock() + HOUR)
    clock.advance(RETIRED_MEMORY + 1)
    assert await store.read(OLD) is None
    assert await store.load(NEW) == {"user": "ada"}


async def test_rotating_a_session_that_is_gone_creates_nothing(store: Store, clock: Clock) -> None:
    await store.save(OLD, {"user": "ada"}, expires_at=clock() + HOUR)
    await store.delete(OLD)  # a logout won the race
    login = Changes(set={"user": "ada"})
    assert await store.rotate(OLD, NEW, login, expires_at=clock() + HOUR) is Merge.GONE
    assert await store.read(NEW) is None


async def test_deleting_a_rotated_id_ends_the_session_it_moved_to(
    store: Store, clock: Clock
) -> None:
    await store.save(OLD, {"user": "ada"}, expires_at=clock() + HOUR)
    await store.rotate(OLD, NEW, Changes(), expires_at=clock() + HOUR)
    await store.delete(OLD)  # a logout sent with the old cookie
    assert await store.load(NEW) is None
    assert await store.load(OLD) is None


async def test_deleting_follows_a_chain_of_rotations(store: Store, clock: Clock) -> None:
    third = "3" * 64
    await store.save(OLD, {"user": "ada"}, expires_at=clock() + HOUR)
    await store.rotate(OLD, NEW, Changes(), expires_at=clock() + HOUR)
    await store.rotate(NEW, third, Changes(), expires_at=clock() + HOUR)
    await store.delete(OLD)
    assert await store.load(third) is None


async def test_a_rotation_cannot_create_an_id_that_a_logout_blocked(
    store: Store, clock: Clock
) -> None:
    await store.save(OLD, {"user": "ada"}, expires_at=clock() + HOUR)
    await store.rotate(OLD, NEW, Changes(), expires_at=clock() + HOUR)
    await store.delete(OLD)  # ends NEW and keeps its id from coming back
    other = "3" * 64
    await store.save(other, {"user": "ada"}, expires_at=clock() + HOUR)
    assert await store.rotate(other, NEW, Changes(), expires_at=clock() + HOUR) is Merge.GONE
    assert await store.load(NEW) is None


async def test_rotate_with_replace_keeps_only_the_requests_session(
    store: Store, clock: Clock
) -> None:
    await store.save(OLD, {"cart": 1}, expires_at=clock() + HOUR)
    fresh = Changes(set={"user": "ada"}, replace=True, whole='{"user":"ada"}')
    assert await store.rotate(OLD, NEW, fresh, expires_at=clock() + HOUR) is Merge.APPLIED
    assert await store.load(NEW) == {"user": "ada"}


# -- max_size is enforced inside the atomic merge ----------------------------------------


async def test_a_merge_past_max_size_fails_and_leaves_the_session_as_it_was(
    store: Store, clock: Clock
) -> None:
    await store.save("a" * 64, {"a": "x"}, expires_at=clock() + HOUR)
    big = Changes(set={"b": "y" * 200}, max_size=100)
    with pytest.raises(SessionTooLarge):
        await store.update("a" * 64, big, expires_at=clock() + HOUR)
    assert await store.load("a" * 64) == {"a": "x"}


async def test_merges_that_fit_alone_cannot_pass_max_size_together(
    store: Store, clock: Clock
) -> None:
    await store.save("a" * 64, {"a": "x"}, expires_at=clock() + HOUR)
    first = Changes(set={"b": "y" * 50}, max_size=100)
    second = Changes(set={"c": "z" * 50}, max_size=100)
    assert await store.update("a" * 64, first, expires_at=clock() + HOUR) is Merge.APPLIED
    with pytest.raises(SessionTooLarge):
        await store.update("a" * 64, second, expires_at=clock() + HOUR)
    assert await store.load("a" * 64) == {"a": "x", "b": "y" * 50}


async def test_a_rotation_past_max_size_fails_and_leaves_the_session_as_it_was(
    store: Store, clock: Clock
) -> None:
    await store.save(OLD, {"a": "x"}, expires_at=clock() + HOUR)
    login = Changes(set={"user": "y" * 200}, max_size=100)
    with pytest.raises(SessionTooLarge):
        await store.rotate(OLD, NEW, login, expires_at=clock() + HOUR)
    assert await store.load(OLD) == {"a": "x"}
    assert await store.read(NEW) is None


async def test_a_rotation_that_replaces_a_session_over_max_size_with_less_succeeds(
    store: Store, clock: Clock
) -> None:
    await store.save(OLD, {"big": "x" * 300}, expires_at=clock() + HOUR)
    fresh = Changes(set={"user": "ada"}, replace=True, whole='{"user":"ada"}', max_size=100)
    assert await store.rotate(OLD, NEW, fresh, expires_at=clock() + HOUR) is Merge.APPLIED
    assert await store.load(NEW) == {"user": "ada"}


async def test_a_session_over_max_size_still_accepts_a_write_that_shrinks_it(
    store: Store, clock: Clock
) -> None:
    await store.save("a" * 64, {"big": "x" * 300, "n": 1}, expires_at=clock() + HOUR)
    shrink = Changes(set={"n": 2}, removed=frozenset({"big"}), max_size=100)
    assert await store.update("a" * 64, shrink, expires_at=clock() + HOUR) is Merge.APPLIED
    still_over = Changes(set={"n": 3}, max_size=10)
    assert await store.update("a" * 64, still_over, expires_at=clock() + HOUR) is Merge.APPLIED
    assert await store.load("a" * 64) == {"n": 3}


# -- what a handler stored is what the next request reads --------------------------------


async def test_numbers_read_back_exactly_as_stored_after_a_merge(
    store: Store, clock: Clock
) -> None:
    await store.save("a" * 64, {"f": 1e20, "g": 1.7e16, "z": -0.0}, expires_at=clock() + HOUR)
    more = Changes(set={"h": 1e20, "big": 2**70 + 1, "neg": -0.0})
    assert await store.update("a" * 64, more, expires_at=clock() + HOUR) is Merge.APPLIED
    loaded = await store.load("a" * 64)
    assert loaded is not None
    for key in ("f", "g", "h"):
        assert type(loaded[key]) is float
    assert loaded["f"] == 1e20 and loaded["g"] == 1.7e16 and loaded["h"] == 1e20
    assert math.copysign(1, loaded["z"]) == -1 and math.copysign(1, loaded["neg"]) == -1
    assert loaded["big"] == 2**70 + 1


async def test_touch_says_whether_it_moved_a_live_session(store: Store, clock: Clock) -> None:
    assert await store.touch("b" * 64, expires_at=clock() + HOUR) is False
    await store.save("a" * 64, {"a": 1}, expires_at=clock() + HOUR)
    assert await store.touch("a" * 64, expires_at=clock() + 2 * HOUR) is True


# -- a request's stale copy never undoes what a newer write stored ---------------------------


async def test_a_touch_based_on_a_copy_written_since_moves_nothing(
    store: Store, clock: Clock
) -> None:
    await store.save("a" * 64, {"a": 1, META_KEY: {"c": 1}}, expires_at=clock() + HOUR)
    loaded = await store.read("a" * 64)
    assert loaded is not None
    pinned = Changes(set={META_KEY: {"c": 1, "p": True}})
    assert await store.update("a" * 64, pinned, expires_at=clock() + 24 * HOUR)
    assert not await store.touch("a" * 64, expires_at=clock() + HOUR, base=loaded.version)
    record = await store.read("a" * 64)
    assert record is not None
    assert record.expires_at == clock() + 24 * HOUR


async def test_a_touch_based_on_the_stored_copy_moves_the_expiry(
    store: Store, clock: Clock
) -> None:
    await store.save("a" * 64, {"a": 1, META_KEY: {"c": 1}}, expires_at=clock() + HOUR)
    loaded = await store.read("a" * 64)
    assert loaded is not None
    assert await store.touch("a" * 64, expires_at=clock() + 2 * HOUR, base=loaded.version)
    record = await store.read("a" * 64)
    assert record is not None
    assert record.expires_at == clock() + 2 * HOUR


async def test_a_merge_with_loaded_metadata_onto_a_newer_copy_keeps_its_metadata_and_expiry(
    store: Store, clock: Clock
) -> None:
    await store.save("a" * 64, {"a": 1, META_KEY: {"c": 1}}, expires_at=clock() + HOUR)
    loaded = await store.read("a" * 64)
    assert loaded is not None
    remembered = Changes(set={META_KEY: {"c": 1, "l": 86400 * 30}})
    assert await store.update("a" * 64, remembered, expires_at=clock() + 24 * HOUR)
    stale = Changes(set={"b": 2, META_KEY: {"c": 1}}, base=loaded.version, own_meta=False)
    # KEPT: the newer copy's expiry stood, so its writer's cookie is the right one
    assert await store.update("a" * 64, stale, expires_at=clock() + HOUR) is Merge.KEPT
    record = await store.read("a" * 64)
    assert record is not None
    assert record.data == {"a": 1, "b": 2, META_KEY: {"c": 1, "l": 86400 * 30}}
    assert record.expires_at == clock() + 24 * HOUR


async def test_a_merge_with_loaded_metadata_onto_the_same_copy_moves_the_expiry(
    store: Store, clock: Clock
) -> None:
    await store.save("a" * 64, {"a": 1, META_KEY: {"c": 1}}, expires_at=clock() + HOUR)
    loaded = await store.read("a" * 64)
    assert loaded is not None
    same = Changes(set={"b": 2, META_KEY: {"c": 1}}, base=loaded.version, own_meta=False)
    assert await store.update("a" * 64, same, expires_at=clock() + 2 * HOUR) is Merge.APPLIED
    record = await store.read("a" * 64)
    assert record is not None
    assert record.data == {"a": 1, "b": 2, META_KEY: {"c": 1}}
    assert record.expires_at == clock() + 2 * HOUR
