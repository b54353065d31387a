"""Bounds on store calls, and connections kept per event loop.

Rules:
- A store call ends within the store's ``timeout``. On the async side a call runs under
  a deadline (:class:`Bounded`); past it the call is cancelled, the connection it held is
  dropped (never handed back to a pool half-used), and a :class:`~lazysession.StoreError`
  says what timed out. On the blocking side a call cannot be interrupted from inside, so
  each wait is bounded by the time the call has left (:func:`remaining`): a lock, a
  database's busy wait, a read, the :class:`Watchdog`'s cut of a connection that does not
  answer (``_watchdog``).
- Connections belong to the event loop that opened them: :class:`PerLoop`
  (``_per_loop``) keeps one client or engine per running loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from .._errors import StoreError
from ._base import describe_error
from ._budget import BUDGET as _BUDGET
from ._budget import StoreBudget as StoreBudget
from ._per_loop import PerLoop as PerLoop
from ._watchdog import RECANCEL as RECANCEL
from ._watchdog import Watchdog as Watchdog
from ._watchdog import looks_dead as looks_dead

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


MIN_WAIT = 0.001
"""The shortest wait :func:`wait_left` gives: a socket timeout of 0 would make the socket
non-blocking (a wait past the deadline is still a wait, that times out at once)."""


def wait_left(limit: float | None, *, sent: bool) -> float | None:
    """Seconds one blocking wait inside the current call may take: ``limit`` (a
    driver's configured timeout; None, no limit) cut to what the call has left, at
    least :data:`MIN_WAIT`. ``sent``: the wait is for the answer of a command already
    sent, which, when it writes, may also take the grace of a write in flight
    (``GRACE_SHARE``); a wait for a connection, or while one is being made, never does.
    None outside any call (the driver's own limit applies)."""
    call = _CALL.get()
    if call is None:
        return None
    end = call.deadline
    if sent and call.writing:
        end += call.seconds * GRACE_SHARE
    left = max(MIN_WAIT, end - time.monotonic())
    return left if limit is None else min(limit, left)


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
