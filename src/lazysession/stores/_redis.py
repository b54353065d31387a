"""Sessions in Redis (or a Redis Cluster), on redis-py, with Redis's own expiry.

Rules:
- The operations and their scripts are in ``_redis_ops``, written once; this module holds
  the clients and the two executors (awaited, and blocking) that send their commands.
- The key carries its TTL, so Redis deletes expired sessions itself: ``sweep`` has
  nothing to do and returns 0. ``load`` also checks ``e`` against the store's clock, so a
  session is never handed out after its expiry, even before Redis has dropped it.
- Connection failures and timeouts raise :class:`~lazysession.StoreError`. Clients the
  store makes itself bound each wait by ``timeout``: for one of ``max_connections``
  connections (a burst waits rather than being refused), to connect, and for each
  answer; a command is retried once after a connection error (a connection the server
  dropped), never after a timeout. On the async side the whole call also runs under a
  deadline of ``timeout``.
- Async clients the store makes are kept per event loop (their connections belong to
  the loop that opened them) and closed when the loop ends or on ``aclose()``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, ClassVar

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.cluster
import redis.exceptions
import redis.retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from .._errors import ConfigurationError, StoreError
from .._expiry import Clock, seconds_of, utc_now
from ._base import Changes, Merge, Record, Store, StoreErrors, SyncStore
from ._limits import Bounded, PerLoop, check_timeout, tracked
from ._redis_ops import SHA, Command, Op, RedisOps


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


DEFAULT_PREFIX = "lazysession:"


async def _run_async(client: Any, cluster: bool, script: str, key: str, *args: Any) -> Any:
    """EVALSHA (the script is cached server side), loading it with EVAL the first time;
    on a cluster, plain EVAL (no NOSCRIPT round trips on every node), with one retry."""
    if cluster:
        return await _cluster_call(client.eval, script, 1, key, *args)
    try:
        return await client.evalsha(SHA[script], 1, key, *args)
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
        return client.evalsha(SHA[script], 1, key, *args)
    except NoScriptError:
        return client.eval(script, 1, key, *args)


AsyncClient = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster
SyncClient = redis.Redis | redis.cluster.RedisCluster


def _store_errors(action: str) -> StoreErrors:
    return StoreErrors(action, (RedisError,))


async def _command_async(client: Any, cluster: bool, key: str, command: Command) -> Any:
    kind, script, args = command
    if kind == "hgetall":
        if cluster:
            return await _cluster_call(client.hgetall, key)
        return await client.hgetall(key)
    return await _run_async(client, cluster, script, key, *args)


async def _tracked_command(client: Any, cluster: bool, key: str, command: Command) -> Any:
    """``_command_async``, reported to the running call (see ``_limits.tracked``): past
    the deadline it is not sent, and a script in flight is given a little more time."""
    return await tracked(command[0] != "hgetall", _command_async(client, cluster, key, command))


_ERRORS = (RedisError,)


_PAGE = 1000


async def _sessions_among_async(client: Any, keys: list[Any]) -> int:
    """How many of ``keys`` hold a session rather than a retired id."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hexists(key, "r")
    return sum(1 for retired in await pipe.execute() if not retired)


def _sessions_among(client: Any, keys: list[Any]) -> int:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hexists(key, "r")
    return sum(1 for retired in pipe.execute() if not retired)


def _command(client: Any, key: str, command: Command) -> Any:
    kind, script, args = command
    if kind == "hgetall":
        return client.hgetall(key)
    return _run(client, script, key, *args)


DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_CONNECTIONS = 100


def _retry(kind: Any) -> Any:
    """One more try after a connection error (a pooled connection the server closed),
    at once; none after a timeout, which would double the wait."""
    return kind(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,))


class _LoopClient:
    """One event loop's client, and the slots that keep its calls within the pool."""

    __slots__ = ("client", "slots")

    def __init__(self, client: AsyncClient, size: int) -> None:
        self.client = client
        self.slots = asyncio.Semaphore(size)


async def _close_async(opened: _LoopClient) -> None:
    await opened.client.aclose()


class RedisStore(Store):
    """Sessions in Redis, under ``prefix``. ``url_or_client`` is a ``redis://`` URL (add
    ``cluster=True`` for a Redis Cluster) or a redis-py client or connection pool of the
    application's, sync or async, single node or cluster.

    With a URL the store makes its clients: every call ends within ``timeout`` seconds
    (default 5; a write already sent gets half that more, see "Timeouts" in
    ``docs/stores.md``), and at most ``max_connections`` connections are open per pool
    (per event loop, and per node of a cluster); calls past that wait for one, within
    ``timeout``. ``socket_timeout`` and ``connect_timeout`` default to ``timeout``. A
    client or pool you pass in keeps its own settings, and is yours to close.
    """

    expires_by_itself: ClassVar[bool] = True

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
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        socket_timeout: float | None = None,
        connect_timeout: float | None = None,
        clock: Clock = utc_now,
    ) -> None:
        if not prefix:
            raise ConfigurationError("RedisStore needs a non-empty prefix")
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise ConfigurationError("RedisStore: max_connections must be a whole number")
        if max_connections < 1:
            raise ConfigurationError("RedisStore: max_connections must be at least 1")
        self.timeout = check_timeout(timeout, "RedisStore")
        self.max_connections = max_connections
        self.prefix = prefix
        self._ops = RedisOps(prefix)
        self._now = seconds_of(clock)
        self._url: str | None = None
        self._cluster = cluster
        self._options: dict[str, Any] = {
            "socket_timeout": self.timeout if socket_timeout is None else socket_timeout,
            "socket_connect_timeout": self.timeout if connect_timeout is None else connect_timeout,
        }
        self._async: AsyncClient | None = None
        self._async_cluster = False  # whether ``_async`` is a cluster client (asked once)
        self._loop_clients: PerLoop[_LoopClient] | None = None
        self._sync_client: SyncClient | None = None
        self._owns_clients = isinstance(url_or_client, str)
        if isinstance(url_or_client, str):
            if not url_or_client.startswith(("redis://", "rediss://", "unix://")):
                raise ConfigurationError(
                    f"RedisStore: {url_or_client!r} is not a redis://, rediss:// or unix:// URL"
                )
            self._url = url_or_client
            self._async_cluster = cluster
            self._loop_clients = PerLoop(self._new_async_client, _close_async)
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

    def _new_async_client(self) -> _LoopClient:
        """A client for one event loop (nothing connects until its first command), and
        ``max_connections`` slots: a call takes one before it sends anything, so the
        client never needs more connections than its pool may open and a burst waits
        for a slot, within the call's deadline. (redis-py's asyncio pool refuses past
        its size; its blocking pool waits, but costs a lock on every command, and its
        asyncio cluster client has none.)"""
        assert self._url is not None
        options = {
            **self._options,
            "retry": _retry(redis.asyncio.retry.Retry),
            "max_connections": self.max_connections,
        }
        client: AsyncClient
        if self._cluster:
            client = redis.asyncio.cluster.RedisCluster.from_url(self._url, **options)
        else:
            client = redis.asyncio.Redis.from_url(self._url, **options)
        return _LoopClient(client, self.max_connections)

    def check_async(self) -> AsyncClient:
        """The async client (the running event loop's, inside one), or a start-up error."""
        if self._loop_clients is not None:
            return self._loop_clients.get().client
        if self._async is None:
            raise ConfigurationError(
                "this RedisStore was given a sync client; the ASGI middleware needs a "
                "redis.asyncio client (or pass a URL and the store makes both)"
            )
        return self._async

    def check_sync(self) -> SyncClient:
        if self._sync_client is None:
            if self._url is None:
                raise ConfigurationError(
                    "this RedisStore was given an asyncio client; WSGI and command-line use "
                    "need a sync redis.Redis client (or pass a URL and the store makes both)"
                )
            options = {
                **self._options,
                "retry": _retry(redis.retry.Retry),
                "max_connections": self.max_connections,
                "timeout": self.timeout,  # the blocking pool's wait for a connection
            }
            if self._cluster:
                self._sync_client = redis.cluster.RedisCluster.from_url(
                    self._url, connection_pool_class=redis.BlockingConnectionPool, **options
                )
            else:
                pool = redis.BlockingConnectionPool.from_url(self._url, **options)
                self._sync_client = redis.Redis(connection_pool=pool)
        return self._sync_client

    def _errors(self, action: str) -> Bounded:
        """``with self._errors("loading a session"):`` around a call: it ends
        within the store's timeout, and its failures are
        :class:`~lazysession.StoreError`."""
        return Bounded(action, _ERRORS, self.timeout)

    def key(self, session_id: str) -> str:
        return self.prefix + session_id

    def _now_ms(self) -> int:
        return int(self._now() * 1000)

    # -- async side ------------------------------------------------------------------------

    async def read(self, session_id: str) -> Record | None:
        record: Record | None = await self._op_async(
            "loading a session", self._ops.read(session_id, self._now_ms())
        )
        return record

    async def touch(self, session_id: str, *, expires_at: datetime) -> bool:
        op = self._ops.touch(session_id, self._now_ms(), _ms(expires_at))
        touched: bool = await self._op_async("touching a session", op)
        return touched

    async def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        op = self._ops.save(session_id, data, self._now_ms(), _ms(expires_at))
        await self._op_async("saving a session", op)

    async def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        op = self._ops.update(session_id, changes, self._now_ms(), _ms(expires_at))
        merged: Merge = await self._op_async("saving a session", op)
        return merged

    async def rotate(
        self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime
    ) -> Merge:
        op = self._ops.rotate(old_id, new_id, changes, self._now_ms(), _ms(expires_at))
        merged: Merge = await self._op_async("rotating a session", op)
        return merged

    async def delete(self, session_id: str) -> None:
        await self._op_async("deleting a session", self._ops.delete(session_id, self._now_ms()))

    async def _op_async(self, action: str, op: Op[Any]) -> Any:
        """Carry out an operation of ``RedisOps``, command by command, within the
        timeout."""
        with self._errors(action):
            if self._loop_clients is None:  # the application's client, and its pool
                return await self._commands_async(action, op)
            async with self._loop_clients.get().slots:
                return await self._commands_async(action, op)

    async def _commands_async(self, action: str, op: Op[Any]) -> Any:
        client = self.check_async()
        cluster = self._async_cluster
        try:
            key, command = next(op)
            while True:
                try:
                    with _store_errors(action):
                        answer = await _tracked_command(client, cluster, key, command)
                except StoreError as error:
                    key, command = op.throw(error)  # the operation may know what it means
                else:
                    key, command = op.send(answer)
        except StopIteration as done:
            return done.value

    async def sweep(self) -> int:
        """Redis deletes expired sessions itself: nothing to do."""
        return 0

    async def count(self) -> int:
        """Sessions under the prefix, by SCAN (never KEYS), retired ids left out: O(n) in
        the keys of the database, with one pipelined round trip per page of keys."""
        client = self.check_async()
        total = 0
        page: list[Any] = []
        # a walk of the whole keyspace: each page waits at most the socket timeout, the
        # walk as long as the keyspace takes (not the call deadline of the other methods)
        with _store_errors("counting sessions"):
            async for key in client.scan_iter(match=self._pattern(), count=_PAGE):
                page.append(key)
                if len(page) == _PAGE:
                    total, page = total + await _sessions_among_async(client, page), []
            if page:
                total += await _sessions_among_async(client, page)
        return total

    def _pattern(self) -> str:
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix)
        return escaped + "*"

    async def aclose(self) -> None:
        """Close the connections the store opened: the running event loop's, and the
        blocking side's. The store stays usable; its next call connects again."""
        if self._loop_clients is not None:
            await self._loop_clients.aclose()
        self._sync.close()

    @property
    def sync(self) -> SyncStore:
        return self._sync


class _SyncRedisStore(SyncStore):
    """The blocking twin: the same commands and script, without ``await``."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store

    def read(self, session_id: str) -> Record | None:
        store = self._store
        record: Record | None = self.op(
            "loading a session", store._ops.read(session_id, store._now_ms())
        )
        return record

    def touch(self, session_id: str, *, expires_at: datetime) -> bool:
        store = self._store
        op = store._ops.touch(session_id, store._now_ms(), _ms(expires_at))
        touched: bool = self.op("touching a session", op)
        return touched

    def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        store = self._store
        self.op(
            "saving a session", store._ops.save(session_id, data, store._now_ms(), _ms(expires_at))
        )

    def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        store = self._store
        op = store._ops.update(session_id, changes, store._now_ms(), _ms(expires_at))
        merged: Merge = self.op("saving a session", op)
        return merged

    def rotate(self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        store = self._store
        op = store._ops.rotate(old_id, new_id, changes, store._now_ms(), _ms(expires_at))
        merged: Merge = self.op("rotating a session", op)
        return merged

    def delete(self, session_id: str) -> None:
        store = self._store
        self.op("deleting a session", store._ops.delete(session_id, store._now_ms()))

    def op(self, action: str, op: Op[Any]) -> Any:
        """Carry out an operation of ``RedisOps``, command by command (blocking)."""
        client = self._store.check_sync()
        try:
            key, command = next(op)
            while True:
                try:
                    with _store_errors(action):
                        answer = _command(client, key, command)
                except StoreError as error:
                    key, command = op.throw(error)
                else:
                    key, command = op.send(answer)
        except StopIteration as done:
            return done.value

    def sweep(self) -> int:
        return 0

    def count(self) -> int:
        client = self._store.check_sync()
        total = 0
        page: list[Any] = []
        with _store_errors("counting sessions"):
            for key in client.scan_iter(match=self._store._pattern(), count=_PAGE):
                page.append(key)
                if len(page) == _PAGE:
                    total, page = total + _sessions_among(client, page), []
            if page:
                total += _sessions_among(client, page)
        return total

    def close(self) -> None:
        """Close the blocking side's connections (the store stays usable)."""
        store = self._store
        if store._owns_clients and store._sync_client is not None:
            client, store._sync_client = store._sync_client, None
            client.close()
            if isinstance(client, redis.Redis):
                client.connection_pool.disconnect()

    def _errors(self, action: str) -> StoreErrors:
        """``with self._errors("loading a session"):`` around a call (its waits are
        bounded by the client's timeouts)."""
        return StoreErrors(action, _ERRORS)
