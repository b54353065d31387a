"""The Redis store's clients, and the two executors (awaited, and blocking) that make
the client calls of ``_redis_calls.client_calls``, and nothing else.

Rules:
- No resend by a client the store makes (``_retry``): the operations send a read once
  more themselves (``_redis_calls``).
- An async client belongs to one event loop (``_LoopClient``); its calls wait for one of
  its pool's slots, and a cluster client learns the topology once, before its first
  command. Making a client reads nothing from the file system (``_driver_options``).
- Each call an executor makes is reported to the running call (``_limits.tracked``):
  past the deadline it is not sent, and a write in flight is given a little more time.
- The blocking clients the store makes wait, each time they wait, only for what the
  running call has left (:class:`BoundedPool`, :class:`BoundedConnection`): for a free
  connection, to connect, for each answer of the handshake, to send a command and for
  its answer (a write's with its grace). A call that needs several round trips in one
  step (a new connection's handshake, then the command) so ends at its deadline, not
  one socket timeout per round trip later.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import NoBackoff
from redis.connection import AbstractConnection

from ._limits import tracked, tracked_sync, wait_left
from ._redis_calls import Batch, Call, Calls, Request

T = TypeVar("T")

AsyncClient = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster
SyncClient = redis.Redis | redis.cluster.RedisCluster


def _retry(kind: Any) -> Any:
    """No resend by the client: a script that ran but whose answer was lost would run
    again and report what the first run did as a conflict (a login as a lost session).
    The operations send a read once more themselves (``_redis_calls``)."""
    return kind(NoBackoff(), 0)


def _decodes(client: Any) -> bool:
    """Whether a client hands back ``str`` instead of ``bytes`` (``decode_responses``)."""
    get_encoder = getattr(client, "get_encoder", None)
    encoder = get_encoder() if get_encoder is not None else None
    return bool(getattr(encoder, "decode_responses", False))


def _url_decodes(url: str | None) -> bool:
    if url is None:
        return False
    from urllib.parse import parse_qs, urlsplit

    values = parse_qs(urlsplit(url).query).get("decode_responses", [])
    return any(value.lower() in ("1", "true", "yes", "y", "on") for value in values)


def _driver_options() -> dict[str, Any]:
    """What redis-py 7.1+ tells the server about itself (CLIENT SETINFO), given: left to
    itself it reads its version from the installed package's metadata (a file-system
    stat) each time it makes a connection, inside the event loop. ``redis.__version__``
    is read once, at import."""
    try:
        from redis.driver_info import DriverInfo
    except ImportError:  # pragma: no cover - redis-py before 7.1 reads it at import
        return {}
    return {"driver_info": DriverInfo(lib_version=redis.__version__)}


class _LoopClient:
    """One event loop's client, and the slots that keep its calls within the pool."""

    __slots__ = ("_started", "_starting", "client", "slots")

    def __init__(self, client: AsyncClient, size: int) -> None:
        self.client = client
        self.slots = asyncio.Semaphore(size)
        self._started = not isinstance(client, redis.asyncio.cluster.RedisCluster)
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        """Learn a cluster's topology once, before the first command, and wait until
        redis-py has finished with the connections that learned it.

        redis-py's asyncio cluster client, when it adopts a topology, marks the
        connections it has open for reconnection and closes them in background tasks;
        a command that took one of them meanwhile (the first commands of a new client,
        sent together) had its connection closed under it: "Connection closed by
        server", half the time a command that was already written, which is never
        sent again (``_redis_calls``). Here those tasks end before any command is sent.
        """
        if self._started:
            return
        async with self._starting:
            if self._started:
                return
            client = self.client
            assert isinstance(client, redis.asyncio.cluster.RedisCluster)
            await client.initialize()
            manager = client.nodes_manager
            pending = set(getattr(manager, "_background_tasks", ()))
            for node in manager.nodes_cache.values():
                pending |= set(getattr(node, "_background_tasks", ()))
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            self._started = True


async def _close_async(opened: _LoopClient) -> None:
    await opened.client.aclose()


# -- the blocking side's waits, bounded by the running call ---------------------------------


class _BoundedWaits(AbstractConnection):
    """Each wait of a blocking connection, cut to what the running store call has left
    (``_limits.wait_left``); outside a call, the connection's own timeouts. Only the
    answer of a command already sent may take a write's grace, never the handshake of a
    connection being made (a write not yet sent is not in flight)."""

    _connecting = False

    @property
    def socket_connect_timeout(self) -> float | int | None:
        """The connect's timeout (read by redis-py as it connects)."""
        configured = AbstractConnection.socket_connect_timeout.fget(self)  # type: ignore[attr-defined]
        wait = wait_left(configured, sent=False)
        return configured if wait is None else wait

    @socket_connect_timeout.setter
    def socket_connect_timeout(self, value: float | int | None) -> None:
        AbstractConnection.socket_connect_timeout.fset(self, value)  # type: ignore[attr-defined]

    def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if self._sock:
            return
        self._connecting = True
        try:
            super().connect_check_health(check_health, retry_socket_connect)
        finally:
            self._connecting = False

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self._sock:  # as redis-py would, before it sends
            self.connect_check_health(check_health=False)
        wait = wait_left(self.socket_timeout, sent=not self._connecting)
        if wait is not None and self._sock:
            self._sock.settimeout(wait)
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]

    def read_response(self, disable_decoding: bool = False, **options: Any) -> Any:
        if "timeout" not in options:  # a timeout redis-py asks for is its own
            wait = wait_left(self.socket_timeout, sent=not self._connecting)
            if wait is not None:
                options["timeout"] = wait
        return super().read_response(disable_decoding, **options)


class BoundedConnection(_BoundedWaits, redis.Connection):
    """A TCP connection whose waits end with the running call."""


class BoundedSSLConnection(_BoundedWaits, redis.SSLConnection):
    """A TLS connection (``rediss://``) whose waits end with the running call."""


class BoundedUnixConnection(_BoundedWaits, redis.UnixDomainSocketConnection):
    """A Unix-socket connection (``unix://``) whose waits end with the running call."""


_BOUNDED: dict[type[Any], type[Any]] = {
    redis.Connection: BoundedConnection,
    redis.SSLConnection: BoundedSSLConnection,
    redis.UnixDomainSocketConnection: BoundedUnixConnection,
}


class BoundedPool(redis.BlockingConnectionPool):
    """redis-py's blocking pool (a burst waits for one of ``max_connections``), whose
    wait for a free connection is cut to what the running call has left, and whose
    connections are the bounded kind of the one the URL asks for (a cluster client
    makes one per node)."""

    def __init__(self, connection_class: type[Any] = redis.Connection, **options: Any) -> None:
        bounded = _BOUNDED.get(connection_class, connection_class)
        super().__init__(connection_class=bounded, **options)  # type: ignore[no-untyped-call]

    @property
    def timeout(self) -> float | None:
        """The wait for a free connection (read by redis-py as it waits)."""
        wait = wait_left(self._timeout, sent=False)
        return self._timeout if wait is None else wait

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._timeout = value


# -- the two executors: each makes the calls of ``client_calls``, and nothing else ---------


async def _execute_async(client: Any, calls: Calls[T]) -> T:
    """Await each call (reported to the running call: past the deadline it is not
    sent), send its answer back in, or throw its failure in."""
    try:
        request = next(calls)
        while True:
            try:
                answer = await tracked(request.writes, _answer_async(client, request))
            except Exception as error:
                request = calls.throw(error)
            else:
                request = calls.send(answer)
    except StopIteration as done:
        result: T = done.value
        return result


async def _answer_async(client: Any, request: Request) -> Any:
    if isinstance(request, Call):
        return await getattr(client, request.method)(*request.args)
    if isinstance(request, Batch):
        pipe = client.pipeline(transaction=False)
        for call in request.calls:
            getattr(pipe, call.method)(*call.args)
        return await pipe.execute()
    if request.keys is None:
        request.keys = client.scan_iter(match=request.pattern, count=request.size)
    page: list[Any] = []
    async for key in request.keys:
        page.append(key)
        if len(page) == request.size:
            break
    return page


def _execute(client: Any, calls: Calls[T]) -> T:
    """The blocking executor: the same, without ``await``."""
    answer_of: Callable[[Request], Any] = functools.partial(_answer, client)
    try:
        request = next(calls)
        while True:
            try:
                answer = tracked_sync(request.writes, answer_of, request)
            except Exception as error:
                request = calls.throw(error)
            else:
                request = calls.send(answer)
    except StopIteration as done:
        result: T = done.value
        return result


def _answer(client: Any, request: Request) -> Any:
    if isinstance(request, Call):
        return getattr(client, request.method)(*request.args)
    if isinstance(request, Batch):
        pipe = client.pipeline(transaction=False)
        for call in request.calls:
            getattr(pipe, call.method)(*call.args)
        return pipe.execute()
    if request.keys is None:
        request.keys = client.scan_iter(match=request.pattern, count=request.size)
    page: list[Any] = []
    for key in request.keys:
        page.append(key)
        if len(page) == request.size:
            break
    return page
