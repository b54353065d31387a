"""Sessions in Redis (or a Redis Cluster), on redis-py, with Redis's own expiry.

Rules:
- One hash per session, ``<prefix><session_id>``: a field ``e`` with the expiry (ms since
  the epoch) and a field ``d:<key>`` with each session key's JSON value. Keeping keys in
  fields lets a request's changes be merged onto the stored copy by Redis itself.
- Every write is one Lua script on one key: atomic, one round trip, and legal on a
  cluster (a single key never crosses slots).
- The key carries its TTL, so Redis deletes expired sessions itself: ``sweep`` has
  nothing to do and returns 0. ``load`` also checks ``e`` against the store's clock, so a
  session is never handed out after its expiry, even before Redis has dropped it.
- Connection failures and timeouts raise :class:`~lazysession.StoreError`; clients the
  store makes itself have timeouts on (``socket_timeout``, ``connect_timeout``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.exceptions import NoScriptError, RedisError

from .. import _json
from .._errors import ConfigurationError
from .._expiry import Clock, from_timestamp, seconds_of, utc_now
from .._session import Changes
from ._base import Record, Store, StoreErrors, SyncStore

DEFAULT_PREFIX = "lazysession:"
_EXPIRY = b"e"
_DATA = "d:"
_DATA_BYTES = _DATA.encode()

# KEYS[1] the session; ARGV[1] TTL in ms, ARGV[2] expiry in ms, then field/value pairs.
_REPLACE = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'e', ARGV[2], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# Moves the expiry of a session that is still live; never creates one.
# ARGV: TTL ms, expiry ms, now ms (the store's clock).
_TOUCH = """
local e = redis.call('HGET', KEYS[1], 'e')
if not e or tonumber(e) <= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'e', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# Merges one request's changes onto a session that is still live; never creates one.
# ARGV: TTL ms, expiry ms, now ms, number of removed keys, removed fields..., field/values.
_UPDATE = """
local e = redis.call('HGET', KEYS[1], 'e')
if not e or tonumber(e) <= tonumber(ARGV[3]) then return 0 end
local removed = tonumber(ARGV[4])
if removed > 0 then redis.call('HDEL', KEYS[1], unpack(ARGV, 5, 4 + removed)) end
redis.call('HSET', KEYS[1], 'e', ARGV[2], unpack(ARGV, 5 + removed))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

_SHA = {script: hashlib.sha1(script.encode()).hexdigest() for script in (_REPLACE, _TOUCH, _UPDATE)}  # noqa: S324 - Redis names scripts by SHA-1


async def _run_async(client: Any, cluster: bool, script: str, key: str, *args: Any) -> Any:
    """EVALSHA (the script is cached server side), loading it with EVAL the first time;
    on a cluster, plain EVAL (no NOSCRIPT round trips on every node), with one retry."""
    if cluster:
        return await _cluster_call(client.eval, script, 1, key, *args)
    try:
        return await client.evalsha(_SHA[script], 1, key, *args)
    except NoScriptError:
        return await client.eval(script, 1, key, *args)


async def _cluster_call(method: Any, *args: Any) -> Any:
    """One retry for redis-py's asyncio cluster client, which can hand a command a
    connection another task is tearing down while many connect at once (it fails with an
    AttributeError before anything is sent). Every command the store sends is idempotent
    (reads, HSET/HDEL of given values, PEXPIRE, DEL), so sending it again is safe."""
    try:
        return await method(*args)
    except AttributeError:
        return await method(*args)


def _run(client: Any, script: str, key: str, *args: Any) -> Any:
    try:
        return client.evalsha(_SHA[script], 1, key, *args)
    except NoScriptError:
        return client.eval(script, 1, key, *args)


AsyncClient = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster
SyncClient = redis.Redis | redis.cluster.RedisCluster


def _store_errors(action: str) -> StoreErrors:
    return StoreErrors(action, (RedisError,))


def _fields(data: Mapping[str, Any]) -> list[str]:
    """Field/value pairs for HSET; every value is encoded (or refused) before any I/O."""
    pairs: list[str] = []
    for key, value in data.items():
        name = str(key)
        pairs += (_DATA + name, _json.dumps_value(name, value))
    return pairs


def _update_args(changes: Changes) -> list[str | int]:
    removed = [_DATA + key for key in changes.removed]
    return [len(removed), *removed, *_fields(changes.set)]


def _decode(raw: Mapping[bytes, bytes], now_ms: int) -> Record | None:
    expiry = raw.get(_EXPIRY)
    if not raw or expiry is None or int(expiry) <= now_ms:
        return None
    data: dict[str, Any] = {}
    try:
        for field, value in raw.items():
            if field.startswith(_DATA_BYTES):
                data[field[len(_DATA_BYTES) :].decode("utf-8")] = _json.loads_value(value)
    except ValueError:
        return None  # a value we did not write: treat the session as absent
    return Record(data, from_timestamp(int(expiry) / 1000))


class RedisStore(Store):
    """Sessions in Redis, under ``prefix``. ``url_or_client`` is a ``redis://`` URL (add
    ``cluster=True`` for a Redis Cluster) or a redis-py client or connection pool of the
    application's, sync or async, single node or cluster."""

    def __init__(
        self,
        url_or_client: str
        | AsyncClient
        | SyncClient
        | redis.ConnectionPool
        | redis.asyncio.ConnectionPool,
        *,
        prefix: str = DEFAULT_PREFIX,
        cluster: bool = False,
        socket_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        clock: Clock = utc_now,
    ) -> None:
        if not prefix:
            raise ConfigurationError("RedisStore needs a non-empty prefix")
        self.prefix = prefix
        self._now = seconds_of(clock)
        self._url: str | None = None
        self._cluster = cluster
        self._options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
        }
        self._async: AsyncClient | None = None
        self._async_cluster = False  # whether ``_async`` is a cluster client (asked once)
        self._sync_client: SyncClient | None = None
        self._owns_clients = isinstance(url_or_client, str)
        if isinstance(url_or_client, str):
            if not url_or_client.startswith(("redis://", "rediss://", "unix://")):
                raise ConfigurationError(
                    f"RedisStore: {url_or_client!r} is not a redis://, rediss:// or unix:// URL"
                )
            self._url = url_or_client
        elif isinstance(url_or_client, (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster)):
            self._async = url_or_client
            self._async_cluster = isinstance(url_or_client, redis.asyncio.cluster.RedisCluster)
        elif isinstance(url_or_client, (redis.Redis, redis.cluster.RedisCluster)):
            self._sync_client = url_or_client
        elif isinstance(url_or_client, redis.asyncio.ConnectionPool):
            self._async = redis.asyncio.Redis(connection_pool=url_or_client)
        elif isinstance(url_or_client, redis.ConnectionPool):
            self._sync_client = redis.Redis(connection_pool=url_or_client)
        else:
            raise ConfigurationError(
                f"RedisStore takes a URL or a redis-py client, not {type(url_or_client).__name__}"
            )
        self._sync = _SyncRedisStore(self)

    # -- clients ---------------------------------------------------------------------------

    def check_async(self) -> AsyncClient:
        if self._async is None:
            if self._url is None:
                raise ConfigurationError(
                    "this RedisStore was given a sync client; the ASGI middleware needs a "
                    "redis.asyncio client (or pass a URL and the store makes both)"
                )
            if self._cluster:
                self._async = redis.asyncio.cluster.RedisCluster.from_url(
                    self._url, **self._options
                )
                self._async_cluster = True
            else:
                self._async = redis.asyncio.Redis.from_url(self._url, **self._options)
        return self._async

    def check_sync(self) -> SyncClient:
        if self._sync_client is None:
            if self._url is None:
                raise ConfigurationError(
                    "this RedisStore was given an asyncio client; WSGI and command-line use "
                    "need a sync redis.Redis client (or pass a URL and the store makes both)"
                )
            if self._cluster:
                self._sync_client = redis.cluster.RedisCluster.from_url(self._url, **self._options)
            else:
                self._sync_client = redis.Redis.from_url(self._url, **self._options)
        return self._sync_client

    def key(self, session_id: str) -> str:
        return self.prefix + session_id

    def _ttl_ms(self, expires_at: datetime) -> tuple[int, int]:
        expiry_ms = int(expires_at.timestamp() * 1000)
        return expiry_ms - self._now_ms(), expiry_ms

    def _now_ms(self) -> int:
        return int(self._now() * 1000)

    # -- async side ------------------------------------------------------------------------

    async def read(self, session_id: str) -> Record | None:
        client = self.check_async()
        with _store_errors("loading a session"):
            if self._async_cluster:
                raw = await _cluster_call(client.hgetall, self.key(session_id))
            else:
                raw = await client.hgetall(self.key(session_id))
        return _decode(cast("dict[bytes, bytes]", raw), self._now_ms())

    async def touch(self, session_id: str, *, expires_at: datetime) -> None:
        ttl, expiry = self._ttl_ms(expires_at)
        client = self.check_async()
        with _store_errors("touching a session"):
            if ttl > 0:
                await _run_async(
                    client,
                    self._async_cluster,
                    _TOUCH,
                    self.key(session_id),
                    ttl,
                    expiry,
                    self._now_ms(),
                )

    async def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        fields = _fields(data)
        ttl, expiry = self._ttl_ms(expires_at)
        client = self.check_async()
        with _store_errors("saving a session"):
            if ttl <= 0 or not fields:
                await client.delete(self.key(session_id))
                return
            await _run_async(
                client, self._async_cluster, _REPLACE, self.key(session_id), ttl, expiry, *fields
            )

    async def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> bool:
        if changes.replace:
            record = await self.read(session_id)
            if record is None:
                return False
            await self.save(session_id, changes.apply_to(None), expires_at=expires_at)
            return True
        args = _update_args(changes)
        ttl, expiry = self._ttl_ms(expires_at)
        client = self.check_async()
        with _store_errors("saving a session"):
            if ttl <= 0:
                await client.delete(self.key(session_id))
                return False
            done = await _run_async(
                client,
                self._async_cluster,
                _UPDATE,
                self.key(session_id),
                ttl,
                expiry,
                self._now_ms(),
                *args,
            )
        return bool(done)

    async def delete(self, session_id: str) -> None:
        client = self.check_async()
        with _store_errors("deleting a session"):
            await client.delete(self.key(session_id))

    async def sweep(self) -> int:
        """Redis deletes expired sessions itself: nothing to do."""
        return 0

    async def count(self) -> int:
        """Keys under the prefix, by SCAN (never KEYS): O(n) in the keys of the database."""
        client = self.check_async()
        total = 0
        with _store_errors("counting sessions"):
            async for _ in client.scan_iter(match=self._pattern(), count=1000):
                total += 1
        return total

    def _pattern(self) -> str:
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix)
        return escaped + "*"

    async def aclose(self) -> None:
        if self._owns_clients and self._async is not None:
            await self._async.aclose()
        if self._owns_clients and self._sync_client is not None:
            self._sync_client.close()

    @property
    def sync(self) -> SyncStore:
        return self._sync


class _SyncRedisStore(SyncStore):
    """The blocking twin: the same commands and script, without ``await``."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store

    def read(self, session_id: str) -> Record | None:
        store = self._store
        with _store_errors("loading a session"):
            raw = store.check_sync().hgetall(store.key(session_id))
        return _decode(cast("dict[bytes, bytes]", raw), store._now_ms())

    def touch(self, session_id: str, *, expires_at: datetime) -> None:
        store = self._store
        ttl, expiry = store._ttl_ms(expires_at)
        with _store_errors("touching a session"):
            if ttl > 0:
                client = store.check_sync()
                _run(client, _TOUCH, store.key(session_id), ttl, expiry, store._now_ms())

    def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        store = self._store
        fields = _fields(data)
        ttl, expiry = store._ttl_ms(expires_at)
        client = store.check_sync()
        with _store_errors("saving a session"):
            if ttl <= 0 or not fields:
                client.delete(store.key(session_id))
                return
            _run(client, _REPLACE, store.key(session_id), ttl, expiry, *fields)

    def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> bool:
        store = self._store
        if changes.replace:
            if self.read(session_id) is None:
                return False
            self.save(session_id, changes.apply_to(None), expires_at=expires_at)
            return True
        args = _update_args(changes)
        ttl, expiry = store._ttl_ms(expires_at)
        client = store.check_sync()
        with _store_errors("saving a session"):
            if ttl <= 0:
                client.delete(store.key(session_id))
                return False
            done = _run(client, _UPDATE, store.key(session_id), ttl, expiry, store._now_ms(), *args)
            return bool(done)

    def delete(self, session_id: str) -> None:
        with _store_errors("deleting a session"):
            self._store.check_sync().delete(self._store.key(session_id))

    def sweep(self) -> int:
        return 0

    def count(self) -> int:
        store = self._store
        with _store_errors("counting sessions"):
            return sum(1 for _ in store.check_sync().scan_iter(match=store._pattern(), count=1000))

    def close(self) -> None:
        if self._store._owns_clients and self._store._sync_client is not None:
            self._store._sync_client.close()
