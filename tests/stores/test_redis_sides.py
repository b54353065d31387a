"""RedisStore's two sides carry out each operation the same way: the same commands on
one node and on a cluster, and the same retry of a cluster call that failed before it
was sent (on the three-master cluster of ``redis_cluster.py``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis

from lazysession import Changes
from lazysession._expiry import utc_now
from lazysession.stores import RedisStore
from lazysession.stores._redis_lua import SCRIPTS
from tests.conftest import require_server
from tests.stores.backends import REDIS, forget_keys, server_reachable

SIDES = ("async", "sync")


@pytest.fixture(params=["redis", "redis-cluster"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis-cluster":
        cluster_url: str = request.getfixturevalue("redis_cluster_url")
        return cluster_url
    if not server_reachable(REDIS):
        require_server(f"no redis server at {REDIS}")
    return REDIS


@pytest.fixture
def store(url: str) -> Iterator[RedisStore]:
    made = RedisStore(
        url, prefix=f"lazysession-test:{uuid.uuid4().hex[:12]}:", cluster=is_cluster(url)
    )
    yield made
    forget_keys(RedisStore(url, prefix=made.prefix, cluster=is_cluster(url)))
    asyncio.run(made.aclose())


def is_cluster(url: str) -> bool:
    return url != REDIS


def spied(client: Any, sent: list[str], fail_first: bool = False) -> None:
    """Record the name of each command ``client`` sends; with ``fail_first``, the first
    one fails as redis-py's asyncio cluster client fails on a connection another task is
    tearing down: an AttributeError, before anything is sent."""
    send = client.execute_command

    def failing(name: str) -> bool:
        sent.append(name)
        return fail_first and len(sent) == 1

    if asyncio.iscoroutinefunction(send):

        async def execute_async(*args: Any, **options: Any) -> Any:
            if failing(str(args[0])):
                raise AttributeError("'NoneType' object has no attribute 'write'")
            return await send(*args, **options)

        client.execute_command = execute_async
    else:

        def execute(*args: Any, **options: Any) -> Any:
            if failing(str(args[0])):
                raise AttributeError("'NoneType' object has no attribute 'write'")
            return send(*args, **options)

        client.execute_command = execute


def on_side(store: RedisStore, side: str, work: Callable[[Any], Any]) -> Any:
    """``work`` run with the store's ``side`` (the store, awaited; or ``store.sync``)."""
    if side == "sync":
        return work(store.sync)

    async def run() -> Any:
        answer = work(store)
        return await answer

    return asyncio.run(run())


def operations(side: Any, sid: str, new: str) -> Any:
    """Every session operation once, in an order that exercises each of them."""
    expires_at = utc_now() + timedelta(hours=1)
    calls: list[Callable[[], Any]] = [
        lambda: side.save(sid, {"a": 1}, expires_at=expires_at),
        lambda: side.read(sid),
        lambda: side.update(sid, Changes(set={"b": 2}), expires_at=expires_at),
        lambda: side.touch(sid, expires_at=expires_at),
        lambda: side.rotate(sid, new, Changes(set={"c": 3}), expires_at=expires_at),
        lambda: side.delete(new),
    ]
    if isinstance(side, RedisStore):

        async def awaited() -> list[Any]:
            return [await call() for call in calls]

        return awaited()
    return [call() for call in calls]


def load_scripts(url: str) -> None:
    """Have the server cache every script (a first EVALSHA would otherwise be answered
    NOSCRIPT and sent again as EVAL on whichever side ran first)."""
    if is_cluster(url):
        return  # a cluster is sent plain EVAL
    client = redis.Redis.from_url(url)
    for script in SCRIPTS:
        client.script_load(script)
    client.close()


def client_of(store: RedisStore, side: str) -> Any:
    return store.check_sync() if side == "sync" else store.check_async()


def test_both_sides_send_the_same_commands(store: RedisStore, url: str) -> None:
    load_scripts(url)
    sent: dict[str, list[str]] = {}
    results = {}
    for side in SIDES:
        sent[side] = []
        sid, new = f"{side}-{uuid.uuid4().hex}", f"{side}-{uuid.uuid4().hex}"

        def work(face: Any, side: str = side, sid: str = sid, new: str = new) -> Any:
            spied(client_of(store, side), sent[side])
            return operations(face, sid, new)

        results[side] = on_side(store, side, work)
    assert sent["sync"] == sent["async"]
    assert results["sync"][2:] == results["async"][2:]  # the reads hold their own ids
    expected_script = "EVAL" if is_cluster(url) else "EVALSHA"
    assert sent["sync"][0] == expected_script


@pytest.mark.parametrize("side", SIDES)
def test_a_cluster_call_that_fails_before_it_is_sent_is_sent_once_more(
    redis_cluster_url: str, side: str
) -> None:
    store = RedisStore(
        redis_cluster_url, prefix=f"lazysession-test:{uuid.uuid4().hex[:12]}:", cluster=True
    )
    sent: list[str] = []
    expires_at = utc_now() + timedelta(hours=1)

    def save_and_read(face: Any) -> Any:
        spied(client_of(store, side), sent, fail_first=True)
        if side == "sync":
            face.save("a" * 64, {"a": 1}, expires_at=expires_at)
            return face.load("a" * 64)

        async def awaited() -> Any:
            await face.save("a" * 64, {"a": 1}, expires_at=expires_at)
            return await face.load("a" * 64)

        return awaited()

    try:
        assert on_side(store, side, save_and_read) == {"a": 1}
        assert sent[:2] == ["EVAL", "EVAL"]  # failed once, sent once more
    finally:
        forget_keys(RedisStore(redis_cluster_url, prefix=store.prefix, cluster=True))
        asyncio.run(store.aclose())
