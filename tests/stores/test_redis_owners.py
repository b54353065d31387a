"""RedisStore's owner index, on one node and on a cluster: a sorted set per owner, filed
before a login creates its session, that lives as long as its sessions and no longer,
and that ``count`` leaves out."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from lazysession import Changes, Merge
from lazysession._expiry import META_KEY, utc_now
from lazysession._identity import handle_of
from lazysession.stores import RedisStore
from lazysession.stores._redis_calls import Command
from lazysession.stores._redis_index import INDEX_SLACK
from tests.conftest import require_server
from tests.stores.backends import REDIS, forget_keys, server_reachable

HOUR = timedelta(hours=1)


@pytest.fixture(params=["redis", "redis-cluster"])
def store(request: pytest.FixtureRequest) -> Iterator[RedisStore]:
    cluster = request.param == "redis-cluster"
    if cluster:
        url: str = request.getfixturevalue("redis_cluster_url")
    else:
        if not server_reachable(REDIS):
            require_server(f"no redis server at {REDIS}")
        url = REDIS
    made = RedisStore(url, prefix=f"lazysession-test:{uuid.uuid4().hex[:12]}:", cluster=cluster)
    yield made
    forget_keys(RedisStore(url, prefix=made.prefix, cluster=cluster))
    asyncio.run(made.aclose())


def key(n: int) -> str:
    return f"{n:064x}"


def owned(owner: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"c": int(utc_now().timestamp())}
    if owner is not None:
        meta["u"] = owner
    return {"user": owner, META_KEY: meta}


def index_ttl(store: RedisStore, owner: str) -> int:
    ttl: int = store.check_sync().pttl(store._ops.index_key(owner))
    return ttl


def run_steps(store: RedisStore, steps: Any, between: Any) -> Any:
    """Carry out an operation's commands one by one, calling ``between`` after the first."""
    run = store.sync.run_command  # type: ignore[attr-defined]
    try:
        step = next(steps)
        answer = run(step)
        between()
        while True:
            step = steps.send(answer)
            answer = run(step)
    except StopIteration as done:
        return done.value


def test_count_leaves_the_indexes_out(store: RedisStore) -> None:
    for n in range(3):
        store.sync.save(key(n), owned(f"user-{n % 2}"), expires_at=utc_now() + HOUR)
    store.sync.save(key(9), owned(None), expires_at=utc_now() + HOUR)
    assert store.sync.count() == 4


def test_the_index_lives_as_long_as_its_sessions_and_a_slack_more(store: RedisStore) -> None:
    store.sync.save(key(1), owned("alice"), expires_at=utc_now() + HOUR)
    hour_ms = HOUR.total_seconds() * 1000
    assert hour_ms < index_ttl(store, "alice") <= hour_ms + INDEX_SLACK
    store.sync.save(key(2), owned(None), expires_at=utc_now() + HOUR)
    assert store.check_sync().exists(store._ops.index_key("None")) == 0


def test_a_touch_past_the_index_life_extends_the_index_first(store: RedisStore) -> None:
    store.sync.save(key(1), owned("alice"), expires_at=utc_now() + HOUR)
    far = timedelta(days=3)
    assert store.sync.touch(key(1), expires_at=utc_now() + far)
    assert index_ttl(store, "alice") > far.total_seconds() * 1000
    later = timedelta(days=5)
    changes = Changes(set={"n": 1})
    assert store.sync.update(key(1), changes, expires_at=utc_now() + later) is Merge.APPLIED
    assert index_ttl(store, "alice") > later.total_seconds() * 1000
    assert [info.handle for info in store.sync.sessions_of("alice")] == [handle_of(key(1))]


def test_an_anonymous_touch_leaves_no_index(store: RedisStore) -> None:
    store.sync.save(key(1), owned(None), expires_at=utc_now() + HOUR)
    assert store.sync.touch(key(1), expires_at=utc_now() + timedelta(days=3))
    assert store.check_sync().keys(store.prefix + "owner:*") == []


def test_a_revoke_all_between_filing_and_saving_keeps_the_login_from_creating_it(
    store: RedisStore,
) -> None:
    steps = store._ops.save(key(1), owned("alice"), utc_now() + HOUR).steps
    run_steps(store, steps, lambda: store.sync.revoke_all("alice"))
    assert store.sync.load(key(1)) is None
    assert store.sync.sessions_of("alice") == []


def test_a_revoke_all_between_filing_and_creating_a_rotation_ends_it(
    store: RedisStore,
) -> None:
    anonymous = owned(None)  # once: its creation second is compared at the end
    store.sync.save(key(1), anonymous, expires_at=utc_now() + HOUR)
    login = Changes(set={"user": "alice", META_KEY: {"c": 1, "u": "alice"}})
    steps = store._ops.rotate(key(1), key(2), login, utc_now() + HOUR).steps
    assert next(steps) == Command(store.prefix + key(1))  # reads the old id first
    run = store.sync.run_command  # type: ignore[attr-defined]
    filing = steps.send(run(Command(store.prefix + key(1))))
    assert isinstance(filing, Command)
    assert filing.key == store._ops.index_key("alice")
    answer = run(filing)
    store.sync.revoke_all("alice")
    result = None
    try:
        while True:
            answer = run(steps.send(answer))
    except StopIteration as done:
        result = done.value
    assert result is Merge.GONE
    assert store.sync.load(key(2)) is None
    assert store.sync.load(key(1)) == {"user": None, META_KEY: anonymous[META_KEY]}
    assert store.sync.sessions_of("alice") == []


def test_sessions_of_drops_dead_members_but_not_a_login_under_way(store: RedisStore) -> None:
    client = store.check_sync()
    index = store._ops.index_key("alice")
    store.sync.save(key(1), owned("alice"), expires_at=utc_now() + HOUR)
    store.sync.save(key(2), owned("alice"), expires_at=utc_now() + HOUR)
    store.sync.delete(key(2))  # a marker now
    long_ago = int((utc_now() - HOUR).timestamp() * 1000)
    client.zadd(index, {key(3): long_ago})  # expired and dropped by Redis
    client.zadd(index, {key(4): int(utc_now().timestamp() * 1000)})  # a login under way
    assert [info.handle for info in store.sync.sessions_of("alice")] == [handle_of(key(1))]
    assert sorted(client.zrange(index, 0, -1)) == [key(1).encode(), key(4).encode()]


def test_the_index_goes_with_its_last_session(store: RedisStore) -> None:
    for n in range(3):
        store.sync.save(key(n), owned("alice"), expires_at=utc_now() + HOUR)
    assert store.sync.revoke_all("alice") == 3
    assert store.check_sync().exists(store._ops.index_key("alice")) == 0


def test_a_large_index_is_pruned_by_a_login(store: RedisStore) -> None:
    client = store.check_sync()
    index = store._ops.index_key("alice")
    long_ago = int((utc_now() - HOUR).timestamp() * 1000)
    client.zadd(index, {key(n): long_ago for n in range(100, 163)})  # 63 long gone
    store.sync.save(key(1), owned("alice"), expires_at=utc_now() + HOUR)  # the 64th
    assert client.zrange(index, 0, -1) == [key(1).encode()]


def test_the_async_side_lists_and_revokes_alike(store: RedisStore) -> None:
    async def run() -> None:
        for n in range(3):
            await store.save(key(n), owned("alice"), expires_at=utc_now() + HOUR)
        listed = {info.handle for info in await store.sessions_of("alice")}
        assert listed == {handle_of(key(n)) for n in range(3)}
        assert await store.revoke("alice", handle_of(key(0)))
        assert await store.revoke_all("alice", keep=handle_of(key(1))) == 1
        assert [info.handle for info in await store.sessions_of("alice")] == [handle_of(key(1))]
        await store.aclose()

    asyncio.run(run())
