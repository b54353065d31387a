"""What RedisStore promises beyond the shared contract: Redis's own expiry, JSON only,
shared clients, SCAN-based counting, and errors instead of hangs."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import anyio
import pytest
import redis
import redis.asyncio

from lazysession import ConfigurationError, SessionMiddleware, StoreError
from lazysession._expiry import utc_now
from lazysession.stores import RedisStore
from tests.conftest import require_server
from tests.stores.backends import REDIS, server_reachable

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def store() -> AsyncIterator[RedisStore]:
    if not server_reachable(REDIS):
        require_server(f"no redis server at {REDIS}")
    prefix = f"lazysession-test:{uuid.uuid4().hex[:12]}:"
    made = RedisStore(REDIS, prefix=prefix)
    yield made
    client = made.check_sync()
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    await made.aclose()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_redis_itself_deletes_a_session_when_it_expires(store: RedisStore) -> None:
    await store.save("a" * 64, {"a": 1}, expires_at=utc_now() + timedelta(milliseconds=300))
    assert store.check_sync().pttl(store.key("a" * 64)) > 0
    await anyio.sleep(0.5)
    assert store.check_sync().exists(store.key("a" * 64)) == 0
    assert await store.count() == 0


async def test_one_key_per_session_holding_json_fields(store: RedisStore) -> None:
    await store.save("a" * 64, {"cart": [1, 2]}, expires_at=utc_now() + timedelta(hours=1))
    raw = store.check_sync().hgetall(store.key("a" * 64))
    assert json.loads(raw[b"d:cart"]) == [1, 2]
    assert int(raw[b"e"]) > 0
    assert set(raw) == {b"e", b"d:cart"}


async def test_a_value_written_by_another_process_that_is_not_ours_reads_as_absent(
    store: RedisStore,
) -> None:
    expiry = int((utc_now() + timedelta(hours=1)).timestamp() * 1000)
    store.check_sync().hset(store.key("a" * 64), mapping={"e": expiry, "d:x": b"\x80\x04pickle"})
    assert await store.load("a" * 64) is None


async def test_an_existing_async_client_is_shared(store: RedisStore) -> None:
    client = redis.asyncio.Redis.from_url(REDIS)
    shared = RedisStore(client, prefix=store.prefix)
    assert shared.check_async() is client
    await shared.save("b" * 64, {"b": 2}, expires_at=utc_now() + timedelta(hours=1))
    assert await store.load("b" * 64) == {"b": 2}
    await client.aclose()


async def test_a_connection_pool_is_shared(store: RedisStore) -> None:
    pool = redis.asyncio.ConnectionPool.from_url(REDIS)
    shared = RedisStore(pool, prefix=store.prefix)
    await shared.save("c" * 64, {"c": 3}, expires_at=utc_now() + timedelta(hours=1))
    assert await store.load("c" * 64) == {"c": 3}
    await pool.aclose()


async def test_count_matches_the_prefix_literally(store: RedisStore) -> None:
    globby = RedisStore(REDIS, prefix=store.prefix + "a*[b]:")
    other = RedisStore(REDIS, prefix=store.prefix + "aXb:")
    await other.save("d" * 64, {"d": 4}, expires_at=utc_now() + timedelta(hours=1))
    await globby.save("e" * 64, {"e": 5}, expires_at=utc_now() + timedelta(hours=1))
    assert await globby.count() == 1
    await globby.aclose()
    await other.aclose()


async def test_an_unreachable_server_raises_a_store_error_not_a_hang() -> None:
    down = RedisStore(f"redis://127.0.0.1:{closed_port()}/0", connect_timeout=1, socket_timeout=1)
    with anyio.fail_after(10), pytest.raises(StoreError, match="loading a session failed"):
        await down.load("a" * 64)
    with pytest.raises(StoreError, match="saving a session failed"):
        down.sync.save("a" * 64, {"a": 1}, expires_at=utc_now() + timedelta(hours=1))


def test_a_sync_client_cannot_serve_the_asgi_middleware() -> None:
    store = RedisStore(redis.Redis.from_url(REDIS))
    with pytest.raises(ConfigurationError, match=r"redis\.asyncio"):
        SessionMiddleware(lambda *a: None, secret_key="s" * 32, store=store)  # type: ignore[arg-type]


def test_a_url_that_is_not_redis_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="redis://"):
        RedisStore("postgresql://localhost/x")


async def test_the_store_and_its_connections_read_nothing_from_the_file_system(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py 7.1+ reads its version from the package metadata (an ``os.stat``) for each
    connection it makes unless told it; a framework may build the store inside the event
    loop too (Starlette builds its middleware on the first request)."""
    import redis.utils

    read_in_loop: list[str] = []

    def version() -> str:
        read_in_loop.append("get_lib_version")
        return "0"

    monkeypatch.setattr(redis.utils, "get_lib_version", version)
    fresh = RedisStore(REDIS, prefix=store.prefix, max_connections=4)
    async with anyio.create_task_group() as group:  # several connections at once
        for n in range(4):
            group.start_soon(fresh.load, f"{n}" * 64)
    await fresh.aclose()
    assert read_in_loop == []


@pytest.mark.parametrize(
    "prefix",
    [lambda key: "sessions", lambda key: key, lambda key: key + key, lambda key: 7],
    ids=["drops-the-key", "adds-nothing", "twice", "not-text"],
)
def test_a_callable_prefix_that_does_not_keep_the_key_whole_is_refused(prefix: Any) -> None:
    with pytest.raises(ConfigurationError, match="callable prefix"):
        RedisStore(REDIS, prefix=prefix)


async def test_a_callable_prefix_names_the_keys_and_count_finds_only_those(
    store: RedisStore,
) -> None:
    tag = store.prefix
    assert isinstance(tag, str)

    def around(key: str) -> str:
        return f"{tag}tenant:{key}:v1"

    shaped = RedisStore(REDIS, prefix=around)
    expires = utc_now() + timedelta(hours=1)
    shaped.sync.save("a" * 64, {"n": 1}, expires_at=expires)
    store.sync.save("b" * 64, {"n": 2}, expires_at=expires)
    client = shaped.check_sync()
    assert client.exists(f"{tag}tenant:{'a' * 64}:v1") == 1
    assert shaped.sync.count() == 1
    assert shaped.sync.load("a" * 64) == {"n": 1}
    client.delete(f"{tag}tenant:{'a' * 64}:v1")
    shaped.sync.close()
