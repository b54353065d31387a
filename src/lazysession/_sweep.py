"""The built-in expiry sweep: when to run it, and running it without ever hurting the app.

Rules:
- The first sweep comes soon after start-up (within ``FIRST_SWEEP_WITHIN`` seconds, or the
  interval if shorter), then one every ``interval`` seconds, each delay jittered by
  +/- ``JITTER`` so replicas that started together drift apart.
- A sweep that fails is logged and retried at the next interval; it never propagates.
  A store's failure is logged as its StoreError, in one line; anything else with its
  traceback.
- Each sweep logs one line: how many sessions it deleted and how long it took.
- With a ``tell`` (the middleware's ``on_event`` is set, and the store's ``sweep`` takes
  ``on_swept``), each owned session the sweep deleted is told as a ``swept`` event: the
  thread sweeper tells each batch's as it goes, the async sweeper a sweep's once it ends
  (or fails; cancelled at shutdown, it still tells what it deleted, for at most
  ``TELL_AT_SHUTDOWN`` seconds). ``tell`` reports a failing callback itself, so the
  sweep goes on. Without one, the sweep is called as it always was.
"""

from __future__ import annotations

import atexit
import inspect
import logging
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable

import anyio

from ._errors import StoreError
from ._identity import SessionEvent, handle_of
from .metrics import Metrics

logger = logging.getLogger("lazysession")

FIRST_SWEEP_WITHIN = 5.0
JITTER = 0.1
TELL_AT_SHUTDOWN = 5.0


def takes_on_swept(sweep: Callable[..., object]) -> bool:
    """Whether a store's ``sweep`` reports what it deletes (takes ``on_swept=``): the
    SQL and memory stores do; a store that expires sessions by itself (Redis) has no
    sweep to report from."""
    try:
        parameters = inspect.signature(sweep).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "on_swept" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def swept_events(owned: list[tuple[str, str]]) -> list[SessionEvent]:
    """The ``swept`` events for what a sweep batch reported: ``(store key, owner)``."""
    return [SessionEvent("swept", handle_of(key), owner) for key, owner in owned]


class SweepSchedule:
    """Delays between sweeps; pure arithmetic, so both shells share it."""

    __slots__ = ("_random", "interval")

    def __init__(self, interval: float, rand: Callable[[], float] = random.random) -> None:
        if interval <= 0:
            raise ValueError("a sweep interval must be positive")
        self.interval = float(interval)
        self._random = rand

    def first_delay(self) -> float:
        return min(FIRST_SWEEP_WITHIN, self.interval) * (0.5 + 0.5 * self._random())

    def next_delay(self) -> float:
        return self.interval * (1.0 + JITTER * (2.0 * self._random() - 1.0))


def report(deleted: int, started: float, metrics: Metrics | None = None) -> None:
    seconds = time.perf_counter() - started
    logger.info("lazysession sweep deleted %d expired sessions in %.3f s", deleted, seconds)
    if metrics is not None:
        metrics.record_sweep(deleted, seconds)


def report_failure(error: BaseException) -> None:
    """One log line for a failed sweep: the StoreError's own message (what failed, and
    the driver's error code), or, for anything else (a bug), the error with its
    traceback."""
    if isinstance(error, StoreError):
        logger.error("lazysession sweep failed, retrying at the next interval: %s", error)
    else:
        logger.error(
            "lazysession sweep failed, retrying at the next interval: %r", error, exc_info=error
        )


class AsyncSweeper:
    """Runs ``sweep`` as a background task of the ASGI lifespan, or, for servers without
    lifespan, after the response of a request that finds a sweep due."""

    __slots__ = ("_busy", "_due", "_sweep", "_tell", "lifespan_running", "metrics", "schedule")

    def __init__(
        self,
        sweep: Callable[..., Awaitable[int]],
        schedule: SweepSchedule,
        metrics: Metrics | None = None,
        tell: Callable[[list[SessionEvent]], Awaitable[None]] | None = None,
    ) -> None:
        self._sweep = sweep
        self.metrics = metrics
        self.schedule = schedule
        self.lifespan_running = False
        self._busy = False
        self._due: float | None = None
        self._tell = tell

    async def sweep_once(self) -> None:
        if self._busy:
            return
        self._busy = True
        started = time.perf_counter()
        try:
            deleted = await (self._sweep() if self._tell is None else self._sweep_telling())
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as error:
            report_failure(error)
        else:
            report(deleted, started, self.metrics)
        finally:
            self._busy = False

    async def _sweep_telling(self) -> int:
        assert self._tell is not None
        swept: list[SessionEvent] = []
        try:
            deleted: int = await self._sweep(
                on_swept=lambda owned: swept.extend(swept_events(owned))
            )
        except BaseException as error:
            if swept:  # what the batches before the failure deleted is gone all the same
                cancelled = isinstance(error, anyio.get_cancelled_exc_class())
                with anyio.move_on_after(TELL_AT_SHUTDOWN if cancelled else None, shield=cancelled):
                    await self._tell(swept)
            raise
        if swept:
            await self._tell(swept)
        return deleted

    async def run_forever(self) -> None:
        """The lifespan task: sleep, sweep, repeat, until cancelled at shutdown."""
        self.lifespan_running = True
        try:
            await anyio.sleep(self.schedule.first_delay())
            while True:
                await self.sweep_once()
                await anyio.sleep(self.schedule.next_delay())
        finally:
            self.lifespan_running = False

    def due_after_request(self) -> bool:
        """Without lifespan: schedule on the first request, then report when due."""
        now = time.monotonic()
        if self._due is None:
            self._due = now + self.schedule.first_delay()
            return False
        if now < self._due or self._busy:
            return False
        self._due = now + self.schedule.next_delay()
        return True


class ThreadSweeper:
    """The WSGI sweep: a daemon thread that sweeps every interval until ``stop()``.

    It is started by the first request (or ``start()``), so a server that forks workers
    after importing the app starts one in each worker, never in the parent. Stores keep
    concurrent sweeps from several workers safe.
    """

    def __init__(
        self,
        sweep: Callable[..., int],
        schedule: SweepSchedule,
        metrics: Metrics | None = None,
        tell: Callable[[list[SessionEvent]], None] | None = None,
    ) -> None:
        self._sweep = sweep
        self._tell = tell
        self.schedule = schedule
        self.metrics = metrics
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._at_exit = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._pid == os.getpid()

    def start(self) -> None:
        if self.running:
            return
        with self._lock:
            if self.running:
                return
            self._stopping = threading.Event()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="lazysession-sweep", daemon=True)
            self._thread.start()
            if not self._at_exit:
                atexit.register(self.stop)
                self._at_exit = True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread; a sweep under way finishes its current batch first."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def sweep_once(self) -> None:
        started = time.perf_counter()
        tell = self._tell
        try:
            if tell is None:
                deleted = self._sweep()
            else:
                deleted = self._sweep(on_swept=lambda owned: tell(swept_events(owned)))
        except Exception as error:
            report_failure(error)
        else:
            report(deleted, started, self.metrics)

    def _run(self) -> None:
        stopping = self._stopping
        if stopping.wait(self.schedule.first_delay()):
            return
        while True:
            self.sweep_once()
            if stopping.wait(self.schedule.next_delay()):
                return
