"""The built-in expiry sweep: when to run it, and running it without ever hurting the app.

Rules:
- The first sweep comes soon after start-up (within ``FIRST_SWEEP_WITHIN`` seconds, or the
  interval if shorter), then one every ``interval`` seconds, each delay jittered by
  +/- ``JITTER`` so replicas that started together drift apart.
- A sweep that fails is logged and retried at the next interval; it never propagates.
  A store's failure is logged as its StoreError, in one line; anything else with its
  traceback.
- Each sweep logs one line: how many sessions it deleted and how long it took.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable

import anyio

from ._errors import StoreError
from .metrics import Metrics

logger = logging.getLogger("lazysession")

FIRST_SWEEP_WITHIN = 5.0
JITTER = 0.1


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

    __slots__ = ("_busy", "_due", "_sweep", "lifespan_running", "metrics", "schedule")

    def __init__(
        self,
        sweep: Callable[[], Awaitable[int]],
        schedule: SweepSchedule,
        metrics: Metrics | None = None,
    ) -> None:
        self._sweep = sweep
        self.metrics = metrics
        self.schedule = schedule
        self.lifespan_running = False
        self._busy = False
        self._due: float | None = None

    async def sweep_once(self) -> None:
        if self._busy:
            return
        self._busy = True
        started = time.perf_counter()
        try:
            deleted = await self._sweep()
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as error:
            report_failure(error)
        else:
            report(deleted, started, self.metrics)
        finally:
            self._busy = False

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
        self, sweep: Callable[[], int], schedule: SweepSchedule, metrics: Metrics | None = None
    ) -> None:
        self._sweep = sweep
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
        try:
            deleted = self._sweep()
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
