"""Sessions in Redis (or a Redis Cluster), on redis-py, with Redis's own expiry.

Rules:
- The operations and their scripts are in ``_redis_ops``, and the client calls that carry
  them out in ``_redis_calls``, written once; the clients and the two executors
  (awaited, and blocking) that make those calls in ``_redis_clients``; this module holds
  the store itself. Both sides behave the same: the same
  commands, the same retries, the same bounds.
- The key carries its TTL, so Redis deletes expired sessions itself: ``sweep`` has
  nothing to do and returns 0. ``load`` also checks ``e`` against the store's clock, so a
  session is never handed out after its expiry, even before Redis has dropped it.
- Connection failures and timeouts raise :class:`~lazysession.StoreError`. Clients the
  store makes itself bound each wait by ``timeout``: for one of ``max_connections``
  connections (a burst waits rather than being refused), to connect, and for each
  answer; a command is retried once after a connection error (a connection the server
  dropped), never after a timeout. A call (all its commands) runs under a deadline of
  ``timeout``: past it, the next command is not sent (and on the async side the command
  in flight is cancelled, a write given half the timeout more to answer). On the
  blocking side each wait is cut to what the call has left (``_redis_clients``), and a
  new client (a cluster's learns the topology as it is made) is made inside the call.
- Async clients the store makes are kept per event loop (their connections belong to
  the loop that opened them) and closed when the loop ends or on ``aclose()``. Neither
  making the store (which a framework may do inside the event loop) nor a new
  connection reads the file system. A cluster client learns the topology once, before
  its first command (``_LoopClient.start``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.cluster
import redis.exceptions
import redis.retry
from redis.exceptions import RedisClusterException, RedisError

from .._errors import ConfigurationError
from .._expiry import Clock, seconds_of, utc_now
from .._identity import SessionInfo
from ._base import Changes, Merge, Record, Store, StoreErrors, SyncStore
from ._limits import Bounded, BoundedSync, PerLoop, check_timeout
from ._redis_calls import Command, Operation, client_calls
from ._redis_clients import (
    AsyncClient,
    BoundedPool,
    SyncClient,
    _close_async,
    _decodes,
    _driver_options,
    _execute,
    _execute_async,
    _LoopClient,
    _retry,
    _url_decodes,
)
from ._redis_ops import RedisOps

T = TypeVar("T")

DEFAULT_PREFIX = "lazysession:"
DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_CONNECTIONS = 100

_ERRORS = (RedisError, RedisClusterException)
"""What redis-py raises (a cluster client that reaches no node raises the second, which
is not a ``RedisError``)."""


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

    ``prefix`` may also be a function from a session's store key to its Redis key (as
    starsessions takes it), e.g. ``lambda key: f"{{app}}:sessions:{key}"``: it must keep
    the store key whole and add something around it; ``count()`` scans for what it puts
    around a key.
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
        prefix: str | Callable[[str], str] = DEFAULT_PREFIX,
        cluster: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        socket_timeout: float | None = None,
        connect_timeout: float | None = None,
        clock: Clock = utc_now,
    ) -> None:
        if not prefix or not (isinstance(prefix, str) or callable(prefix)):
            raise ConfigurationError(
                "RedisStore needs a non-empty prefix: a string, or a function from a "
                "store key to a Redis key"
            )
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise ConfigurationError("RedisStore: max_connections must be a whole number")
        if max_connections < 1:
            raise ConfigurationError("RedisStore: max_connections must be at least 1")
        self.timeout = check_timeout(timeout, "RedisStore")
        self.max_connections = max_connections
        now = seconds_of(clock)
        self._ops = RedisOps(prefix, lambda: int(now() * 1000))
        self.prefix: str = self._ops.around[0]
        """What comes before a session's store key in its Redis key: the prefix itself,
        unless it is a function (then also ``self.key``, whole)."""
        self._url: str | None = None
        self._cluster = cluster
        self._options: dict[str, Any] = {
            "socket_timeout": self.timeout if socket_timeout is None else socket_timeout,
            "socket_connect_timeout": self.timeout if connect_timeout is None else connect_timeout,
            **_driver_options(),
        }
        self._async: AsyncClient | None = None
        self._async_cluster = False  # whether ``_async`` is a cluster client (asked once)
        self._loop_clients: PerLoop[_LoopClient] | None = None
        self._sync_client: SyncClient | None = None
        self._sync_cluster = cluster  # whether ``_sync_client`` is a cluster client
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
            self._sync_cluster = isinstance(url_or_client, redis.cluster.RedisCluster)
        elif isinstance(url_or_client, redis.asyncio.ConnectionPool):
            self._async = redis.asyncio.Redis(connection_pool=url_or_client)
        elif isinstance(url_or_client, redis.ConnectionPool):
            self._sync_client = redis.Redis(connection_pool=url_or_client)
            self._sync_cluster = False
        else:
            raise ConfigurationError(
                f"RedisStore takes a URL or a redis-py client, not {type(url_or_client).__name__}"
            )
        given = self._async if self._async is not None else self._sync_client
        decoding = _decodes(given) if given is not None else _url_decodes(self._url)
        if decoding:
            raise ConfigurationError(
                "RedisStore needs a client that returns bytes: this one was made with "
                "decode_responses=True (give the store its own client, or its URL)"
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
        """The blocking client, made on first use from the URL (a blocking pool of
        ``max_connections``); a ``ConfigurationError`` when the store was given an asyncio
        client only."""
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
                    self._url, connection_pool_class=BoundedPool, **options
                )
            else:
                pool = BoundedPool.from_url(self._url, **options)
                self._sync_client = redis.Redis(connection_pool=pool)
        return self._sync_client

    def key(self, session_id: str) -> str:
        """The Redis key of the session ``session_id``: the prefix, then the id (or what
        a callable prefix makes of it)."""
        return self._ops.key(session_id)

    # -- the async side ----------------------------------------------------------------------

    async def read(self, session_id: str) -> Record | None:
        """The session under ``session_id`` (one ``HGETALL``), checked against the clock."""
        return await self._run_async(self._ops.read(session_id))

    async def touch(self, session_id: str, *, expires_at: datetime, base: object = None) -> bool:
        """Move a live session's expiry and TTL, in one script; whether it did."""
        return await self._run_async(self._ops.touch(session_id, expires_at, base))

    async def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        """Store a new session whole, in one script (an owned one is filed in its index first)."""
        await self._run_async(self._ops.save(session_id, data, expires_at))

    async def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        """Merge ``changes`` onto the stored fields, in Redis, in one script."""
        return await self._run_async(self._ops.update(session_id, changes, expires_at))

    async def rotate(
        self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime
    ) -> Merge:
        """Move the live session ``old_id`` to ``new_id`` with ``changes`` merged on, in
        steps each safe on its own (``_redis_ops``)."""
        return await self._run_async(self._ops.rotate(old_id, new_id, changes, expires_at))

    async def delete(self, session_id: str) -> None:
        """End the session, leaving a marker that retires its id (and end its successor)."""
        await self._run_async(self._ops.delete(session_id))

    async def claim(self, ended_id: str, new_id: str) -> bool:
        """See :meth:`Store.claim`."""
        return await self._run_async(self._ops.claim(ended_id, new_id))

    async def count(self) -> int:
        """Sessions under the prefix, by SCAN (never KEYS), retired ids left out: O(n) in
        the keys of the database, with one pipelined round trip per page of keys."""
        return await self._run_async(self._ops.count())

    async def sweep(self) -> int:
        """Redis deletes expired sessions itself: nothing to do."""
        return 0

    async def sessions_of(self, owner: str) -> list[SessionInfo]:
        """The owner's live sessions, the most recently seen first: one round trip for
        the index, and one per thousand of its members (a script on one node, a
        pipeline on a cluster)."""
        return await self._run_async(self._ops.sessions_of(owner))

    async def revoke(self, owner: str, handle: str) -> bool:
        """End the session of ``owner`` that ``handle`` names; whether there was one."""
        return await self._run_async(self._ops.revoke(owner, handle, None)) > 0

    async def revoke_all(self, owner: str, *, keep: str | None = None) -> int:
        """End every session of ``owner`` but ``keep``; how many were ended."""
        return await self._run_async(self._ops.revoke(owner, None, keep))

    async def _run_async(self, operation: Operation[T]) -> T:
        """Carry out an operation of ``RedisOps`` on the async client, within the
        timeout (unless it walks the keyspace), its failures raised as StoreError."""
        client = self.check_async()
        calls = client_calls(operation, self._async_cluster)
        opened = self._loop_clients.get() if self._loop_clients is not None else None
        if not operation.bounded:
            with StoreErrors(operation.action, _ERRORS):
                if opened is not None:
                    await opened.start()
                return await _execute_async(client, calls)
        with Bounded(operation.action, _ERRORS, self.timeout):
            if opened is None:  # the application's client, and its pool
                return await _execute_async(client, calls)
            await opened.start()
            async with opened.slots:
                return await _execute_async(client, calls)

    async def aclose(self) -> None:
        """Close the connections the store opened: the running event loop's, and the
        blocking side's. The store stays usable; its next call connects again."""
        if self._loop_clients is not None:
            await self._loop_clients.aclose()
        self._sync.close()

    @property
    def sync(self) -> SyncStore:
        """The blocking side: the same operations, on the blocking client."""
        return self._sync


class _SyncRedisStore(SyncStore):
    """The blocking side: the same operations, run by the blocking executor."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store
        self._ops = store._ops

    def read(self, session_id: str) -> Record | None:
        return self._run(self._ops.read(session_id))

    def touch(self, session_id: str, *, expires_at: datetime, base: object = None) -> bool:
        return self._run(self._ops.touch(session_id, expires_at, base))

    def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        self._run(self._ops.save(session_id, data, expires_at))

    def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        return self._run(self._ops.update(session_id, changes, expires_at))

    def rotate(self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        return self._run(self._ops.rotate(old_id, new_id, changes, expires_at))

    def delete(self, session_id: str) -> None:
        self._run(self._ops.delete(session_id))

    def claim(self, ended_id: str, new_id: str) -> bool:
        return self._run(self._ops.claim(ended_id, new_id))

    def count(self) -> int:
        return self._run(self._ops.count())

    def sweep(self) -> int:
        return 0

    def sessions_of(self, owner: str) -> list[SessionInfo]:
        return self._run(self._ops.sessions_of(owner))

    def revoke(self, owner: str, handle: str) -> bool:
        return self._run(self._ops.revoke(owner, handle, None)) > 0

    def revoke_all(self, owner: str, *, keep: str | None = None) -> int:
        return self._run(self._ops.revoke(owner, None, keep))

    def _run(self, operation: Operation[T]) -> T:
        """Carry out an operation of ``RedisOps`` on the blocking client: each command
        refused past the deadline, each wait bounded by the client's timeouts."""
        store = self._store
        calls = client_calls(operation, store._sync_cluster)
        if not operation.bounded:
            with StoreErrors(operation.action, _ERRORS):
                return _execute(store.check_sync(), calls)
        with BoundedSync(operation.action, _ERRORS, store.timeout):
            # Inside the bound: a new cluster client learns the topology as it is made.
            return _execute(store.check_sync(), calls)

    def run_command(self, command: Command) -> Any:
        """One command, carried out as any operation's are (for tests that step through
        an operation)."""

        def one() -> Any:
            return (yield command)

        return self._run(Operation("a store step", one()))

    def close(self) -> None:
        """Close the blocking side's connections (the store stays usable)."""
        store = self._store
        if store._owns_clients and store._sync_client is not None:
            client, store._sync_client = store._sync_client, None
            client.close()
            if isinstance(client, redis.Redis):
                client.connection_pool.disconnect()
