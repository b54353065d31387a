"""Bounds on store calls, and connections kept per event loop.

Rules:
- A store call ends within the store's ``timeout``. On the async side a call runs under
  a deadline (:class:`Bounded`); past it the call is cancelled, the connection it held is
  dropped (never handed back to a pool half-used), and a :class:`~lazysession.StoreError`
  says what timed out. On the blocking side a call cannot be interrupted from inside, so
  each wait is bounded by the time the call has left (:func:`remaining`): a lock, a
  database's busy wait, a read, the :class:`Watchdog`'s cut of a connection that does not
  answer.
- Connections belong to the event loop that opened them. :class:`PerLoop` keeps one
  client or engine per running loop, opens it on the loop's first call, and closes it
  when the loop ends (its runner cancels the task that watches for that) or when
  ``aclose()`` is called from that loop (the ASGI lifespan's shutdown). A store is usable
  again after ``aclose()``: the next call opens new connections.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import logging
import select
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import anyio

from .._errors import StoreError
from ._base import describe_error
from ._budget import BUDGET as _BUDGET
from ._budget import StoreBudget as StoreBudget

logger = logging.getLogger("lazysession")

T = TypeVar("T")

SERVER_SHARE = 0.9
"""The share of ``timeout`` a database is asked to stop a statement after, so that a
live database answers first, with its connection still usable, and the client's own
bound (the whole ``timeout``) is left for a database that does not answer at all."""


def check_timeout(timeout: object, owner: str) -> float:
    """``timeout`` as positive seconds, or a ConfigurationError naming ``owner``."""
    from .._errors import ConfigurationError

    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigurationError(f"{owner}: timeout must be a positive number of seconds")
    return float(timeout)


RECANCEL = 0.05
"""Seconds between the checks (and cancellations) of a call past its deadline."""

GRACE_SHARE = 0.5
"""A write already sent when the deadline passes (a COMMIT, an autocommitted statement)
may take this share of the timeout more to answer: cutting it would leave its outcome
unknown (a 503 for a write that did happen, a login whose new id the browser never
learns), so it is given the time of about one more round trip first."""


class DeadlinePassed(Exception):
    """The call reached its deadline between statements: the next one is not sent."""


class _Call:
    """One bounded store call: its deadline, and whether a write it sent is still in
    flight. The executors report each step to it (:func:`tracked`); the deadline's
    enforcers (:class:`Bounded`'s timer, the :class:`Watchdog`) ask it whether
    they may cut the call now (:meth:`may_cut`)."""

    __slots__ = (
        "_budget",
        "_call_token",
        "action",
        "deadline",
        "errors",
        "seconds",
        "settled",
        "started",
        "writing",
    )

    def __init__(self, action: str, errors: tuple[type[BaseException], ...], seconds: float):
        self.action = action
        self.errors = errors
        self.seconds = seconds

    def _begin(self) -> float:
        """Start the call; the seconds it may take (its store's timeout, or less when
        the request's :class:`StoreBudget` has less left)."""
        now = time.monotonic()
        # A call inside another (a blocking call run for an async one) spends nothing more.
        budget = self._budget = _BUDGET.get() if _CALL.get() is None else None
        seconds = self.seconds if budget is None else budget.allow(self.seconds)
        self.started = now
        self.deadline = now + seconds
        self.writing = False
        self.settled = False  # a write answered past the deadline: its outcome is known
        self._call_token = _CALL.set(self)
        return seconds

    def _end(self) -> None:
        _CALL.reset(self._call_token)
        if self._budget is not None:
            self._budget.spent(time.monotonic() - self.started)

    def late(self) -> bool:
        return time.monotonic() >= self.deadline

    def may_cut(self) -> bool:
        """Past the deadline: whether the call may be cut now. Not while a write it sent
        is in flight (for up to ``GRACE_SHARE`` of the timeout), nor once such a write
        has answered (the call then ends at its next statement, which is not sent)."""
        if self.settled:
            return False
        return not self.writing or time.monotonic() >= self.deadline + self.seconds * GRACE_SHARE

    def write_ended(self) -> None:
        if self.writing:
            self.writing = False
            if self.late():
                self.settled = True

    def timed_out(self) -> StoreError:
        return StoreError(
            f"{self.action} failed: no answer within the store's timeout ({self.seconds:g} s)"
        )


_CALL: contextvars.ContextVar[_Call | None] = contextvars.ContextVar(
    "lazysession_call", default=None
)


def remaining(default: float) -> float:
    """Seconds left to the current call's deadline (``default`` outside any call),
    never less than zero."""
    call = _CALL.get()
    if call is None:
        return default
    return max(0.0, call.deadline - time.monotonic())


def current_call() -> _Call | None:
    return _CALL.get()


# The executors report each step of a call (a SQL run, a Redis command) through these.


async def tracked(writes: bool, step: Awaitable[T]) -> T:
    """Await one step of the running call: past the deadline it is not sent; a step that
    writes is a write in flight until it answers (see :meth:`_Call.may_cut`)."""
    call = _CALL.get()
    if call is None:
        return await step
    if call.late():
        _close(step)
        raise DeadlinePassed
    if not writes:
        return await step
    call.writing = True
    try:
        answer = await step
    except BaseException:
        call.writing = False  # failed: it settled nothing
        raise
    call.write_ended()
    return answer


def _close(step: Awaitable[Any]) -> None:
    close = getattr(step, "close", None)  # a coroutine never started: no warning
    if close is not None:
        close()


def tracked_sync(writes: bool, step: Callable[[Any], T], arg: Any) -> T:
    """The blocking twin of :func:`tracked`: ``step(arg)``."""
    call = _CALL.get()
    if call is None:
        return step(arg)
    if call.late():
        raise DeadlinePassed
    if not writes:
        return step(arg)
    call.writing = True
    try:
        answer = step(arg)
    except BaseException:
        call.writing = False
        raise
    call.write_ended()
    return answer


class Bounded(_Call):
    """``with Bounded("loading a session", errors, seconds):`` runs the block under a
    deadline of ``seconds`` and raises the back end's own ``errors``, and the deadline,
    as :class:`~lazysession.StoreError`.

    Past the deadline the task is cancelled (unless :meth:`may_cut` says a write is in
    flight), and cancelled again every ``RECANCEL`` seconds until it leaves the block: a
    driver's clean-up that waits on the server that stopped answering (SQLAlchemy's
    graceful close of an asyncpg connection, a cancel request) is cut short too, and the
    connection is closed at once instead of being handed back. ``asyncio.timeout``
    cancels once only, and anyio's cancel scope, which keeps cancelling, costs several
    times more on every call (``benchmarks/stores.py``); this is the one timer per call
    that both need. A cancellation from elsewhere met on the way out propagates as one.
    Outside asyncio (trio), anyio's scope does the work.
    """

    __slots__ = ("_fired", "_handle", "_loop", "_outer", "_scope", "_task")

    def __enter__(self) -> None:
        seconds = self._begin()
        self._fired = 0
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio
            self._task = None
            self._scope = anyio.CancelScope(deadline=anyio.current_time() + seconds)
            self._scope.__enter__()
            return
        task = self._task = asyncio.current_task()
        self._outer = _cancelling(task)
        self._handle = self._loop.call_later(seconds, self._fire)

    def _fire(self) -> None:
        assert self._task is not None
        if self.may_cut():
            self._fired += 1
            self._task.cancel()
        elif self.settled:
            return  # the outcome is known: the call ends at its next statement
        self._handle = self._loop.call_later(RECANCEL, self._fire)

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        self._end()
        task = self._task
        if task is None:
            self._scope.__exit__(kind, error, tb)
            timed_out = self._scope.cancelled_caught
        else:
            self._handle.cancel()
            timed_out = False
            if self._fired:
                uncancel = getattr(task, "uncancel", None)  # Python 3.11+
                if uncancel is not None:
                    for _ in range(self._fired):
                        uncancel()
                cancelled_elsewhere = _cancelling(task) > self._outer
                timed_out = isinstance(error, asyncio.CancelledError) and not cancelled_elsewhere
        if timed_out or isinstance(error, DeadlinePassed):
            raise self.timed_out() from None
        if error is not None and isinstance(error, self.errors):
            raise _converted(self.action, error) from None


def _cancelling(task: asyncio.Task[Any] | None) -> int:
    """How many cancellations of ``task`` are pending (0 before Python 3.11)."""
    cancelling = getattr(task, "cancelling", None)
    return int(cancelling()) if cancelling is not None else 0


def _converted(action: str, error: BaseException) -> StoreError:
    return StoreError(f"{action} failed: {describe_error(error)}")


class BoundedSync(_Call):
    """The blocking twin of :class:`Bounded`: a blocking call cannot be interrupted from
    inside, so it sets the call's deadline (kept from an enclosing call when that one
    ends sooner) for the waits inside to bound themselves by, refuses statements past
    it, and raises back-end errors as :class:`~lazysession.StoreError`, naming the
    timeout when a wait gave up at the deadline or the :class:`Watchdog` cut it."""

    __slots__ = ()

    def __enter__(self) -> None:
        outer = _CALL.get()
        self._begin()
        if outer is not None:  # kept from an enclosing call when that one ends sooner
            self.deadline = min(outer.deadline, self.deadline)

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        self._end()
        if error is None:
            return
        ours = isinstance(error, self.errors)
        late = isinstance(error, DeadlinePassed) or (
            self.late() and (ours or isinstance(error, StoreError))  # gave up, or was cut
        )
        if late:
            raise self.timed_out() from None
        if ours:
            raise _converted(self.action, error) from None


# -- connections per event loop -------------------------------------------------------------


class PerLoop(Generic[T]):
    """One resource (a client, an engine) per running event loop, made by ``open`` on the
    loop's first call and closed by ``close`` when the loop ends or on ``aclose()``.
    Outside asyncio (trio, or no loop) one resource is shared and closed by ``aclose()``."""

    __slots__ = ("_by_loop", "_close", "_last", "_last_loop", "_open")

    def __init__(self, open: Callable[[], T], close: Callable[[T], Awaitable[None]]) -> None:
        self._open = open
        self._close = close
        self._by_loop: dict[object, tuple[T, asyncio.Task[None] | None]] = {}
        self._last_loop: object = None
        self._last: T | None = None

    def get(self) -> T:
        """This loop's resource, opened now if it has none."""
        try:
            loop: object = asyncio.get_running_loop()
        except RuntimeError:
            loop = _NO_LOOP
        if loop is self._last_loop:
            return self._last  # type: ignore[return-value]
        entry = self._by_loop.get(loop)
        if entry is None:
            entry = self._start(loop)
        self._last_loop, self._last = loop, entry[0]
        return entry[0]

    def _start(self, loop: object) -> tuple[T, asyncio.Task[None] | None]:
        self._forget_closed_loops()
        resource = self._open()
        watcher = None
        if isinstance(loop, asyncio.AbstractEventLoop):
            watcher = loop.create_task(
                self._close_when_the_loop_ends(loop, resource),
                name="lazysession: closes the store's connections when this loop ends",
            )
        entry = self._by_loop[loop] = (resource, watcher)
        return entry

    async def _close_when_the_loop_ends(self, loop: object, resource: T) -> None:
        try:
            await asyncio.Event().wait()  # until cancelled, by the loop's runner at its end
        finally:
            if self._drop(loop, resource):
                await self._quietly_close(resource)

    def _drop(self, loop: object, resource: T) -> bool:
        entry = self._by_loop.get(loop)
        if entry is None or entry[0] is not resource:
            return False
        del self._by_loop[loop]
        if self._last_loop is loop:
            self._last_loop, self._last = None, None
        return True

    def _forget_closed_loops(self) -> None:
        """Loops closed without cancelling their tasks took their connections with them;
        let go of what is left of those."""
        for loop in [k for k in self._by_loop if getattr(k, "is_closed", lambda: False)()]:
            self._drop(loop, self._by_loop[loop][0])

    async def _quietly_close(self, resource: T) -> None:
        try:
            await self._close(resource)
        except Exception as error:  # closing is best effort; the loop is ending
            logger.debug("lazysession: closing a store's connections failed: %r", error)

    def opened(self) -> list[T]:
        return [resource for resource, _ in self._by_loop.values()]

    async def aclose(self) -> None:
        """Close this loop's resource (the next call opens a new one)."""
        try:
            loop: object = asyncio.get_running_loop()
        except RuntimeError:
            loop = _NO_LOOP
        entry = self._by_loop.get(loop)
        if entry is None:
            return
        resource, watcher = entry
        self._drop(loop, resource)
        if watcher is not None:
            watcher.cancel()
        await self._close(resource)

    def close_unused(self, close: Callable[[T], None]) -> None:
        """Close, without a loop, what no running loop holds (at the blocking side's
        close): resources of loops that have ended."""
        for loop, (resource, _) in list(self._by_loop.items()):
            if loop is _NO_LOOP or getattr(loop, "is_closed", lambda: False)():
                self._drop(loop, resource)
                close(resource)


_NO_LOOP = object()


# -- a connection's liveness, without a round trip --------------------------------------------


def looks_dead(driver_connection: Any) -> bool:
    """Whether an idle pooled connection has been closed by its server (or has data
    nobody asked for, which for an idle connection means the same): its transport is
    closed, or its socket reads as ready. No I/O beyond a zero-timeout poll."""
    transport = getattr(driver_connection, "_transport", None)
    if transport is None:
        writer = getattr(driver_connection, "_writer", None)
        transport = getattr(writer, "transport", None)
        reader = getattr(driver_connection, "_reader", None)
        if reader is not None and (reader.at_eof() or getattr(reader, "_buffer", b"")):
            return True
    if transport is not None:
        if transport.is_closing():
            return True
        sock = transport.get_extra_info("socket")
        fd = -1 if sock is None else sock.fileno()
    else:
        is_closed = getattr(driver_connection, "is_closed", None)
        if callable(is_closed) and is_closed():
            return True
        fd = _fileno(driver_connection)
    return fd >= 0 and _readable(fd)


def _fileno(connection: Any) -> int:
    fileno = getattr(connection, "fileno", None)
    if callable(fileno):
        try:
            return int(fileno())
        except Exception:
            return -1
    sock = getattr(connection, "_sock", None)  # pymysql
    if isinstance(sock, socket.socket):
        return sock.fileno()
    return -1


if hasattr(select, "poll"):

    def _readable(fd: int) -> bool:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))

else:  # pragma: no cover - Windows

    def _readable(fd: int) -> bool:
        return bool(select.select([fd], [], [], 0)[0])


# -- cutting a blocking connection that does not answer ---------------------------------------


class Watchdog:
    """Shuts down the socket of a blocking connection whose call passed its deadline, so
    a driver without a read timeout (psycopg) fails with a connection error instead of
    waiting forever. One thread for the process, started on first use."""

    _lock = threading.Lock()
    _instance: Watchdog | None = None

    def __init__(self) -> None:
        self._wake = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, tuple[Any, _Call | None]] = {}
        self._ids = itertools.count()
        self._thread = threading.Thread(target=self._run, name="lazysession-watchdog", daemon=True)
        self._thread.start()

    @classmethod
    def instance(cls) -> Watchdog:
        if cls._instance is None:
            with cls._lock:
                if cls._instance is None:
                    cls._instance = cls()
        return cls._instance

    def arm(self, connection: Any, seconds: float, call: _Call | None = None) -> int:
        """Cut ``connection`` in ``seconds`` unless disarmed (or, past that, as soon as
        ``call`` allows it); returns the ticket."""
        ticket = next(self._ids)
        due = time.monotonic() + seconds
        with self._wake:
            self._armed[ticket] = (connection, call)
            heapq.heappush(self._heap, (due, ticket))
            if self._heap[0][1] == ticket:
                self._wake.notify()
        return ticket

    def disarm(self, ticket: int) -> None:
        with self._wake:
            self._armed.pop(ticket, None)

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                heap = self._heap
                while heap and (heap[0][1] not in self._armed or heap[0][0] <= now):
                    _, ticket = heapq.heappop(heap)
                    armed = self._armed.get(ticket)
                    if armed is None:
                        continue
                    connection, call = armed
                    if call is None or call.may_cut():
                        del self._armed[ticket]
                        _cut(connection)
                    else:  # a write in flight, or answered: look again shortly
                        heapq.heappush(heap, (now + RECANCEL, ticket))
                self._wake.wait(self._heap[0][0] - now if self._heap else None)


def _cut(connection: Any) -> None:
    """Shut the connection's socket down (read and write): its driver's wait ends with
    an error. The descriptor stays open, owned by the driver, which closes it."""
    if getattr(connection, "closed", False):
        return
    fd = _fileno(connection)
    if fd < 0:
        return
    try:
        with socket.socket(fileno=_dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _dup(fd: int) -> int:
    import os

    return os.dup(fd)
