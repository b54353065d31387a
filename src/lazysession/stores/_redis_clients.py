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

from ._limits import tracked, tracked_sync
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
