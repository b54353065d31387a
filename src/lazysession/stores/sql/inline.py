"""A SQLite file served on the event loop's own thread, off it only when it must wait.

A SQLite call takes tens of microseconds; two worker-thread hops around it cost several
times that. So a call of the async side runs on the event loop (``Inline``), and goes on
in a worker thread, from the step where it stopped, wherever it would have to wait:

Rules:
- Another process's write lock: a call on the loop waits for it at most ``INLINE_BUSY``
  (SQLite's busy timeout, set per checkout), then moves to a thread, where it waits up to
  its deadline. Only a step that has had no effect moves: an autocommitted statement that
  was refused, or a ``BEGIN IMMEDIATE`` that was.
- This process's writers' turn: taken only if free; else the call moves at once (a
  writer in a thread holds it, waiting for the lock), so while another process holds
  the lock, at most one write at a time waits on the loop, and only ``INLINE_BUSY``.
- Bulk work (scans, the table's creation, a checkpoint) always runs in a thread; a sweep
  batch paced to about a millisecond (``upkeep``) is served here as a write is.
- The call's deadline and error rules are the blocking side's (``BoundedSync``), set
  once for both parts of the call. On the loop, statements go straight to the driver
  (``raw``), compiled once each by SQLAlchemy.
- The WAL is not checkpointed on the loop at SQLite's threshold: its automatic
  checkpoint runs in the commit that crosses it and copies about 4 MB there, stalling
  every request of the process. On the loop's connection it waits for ``LOOP_AUTOCHECKPOINT`` pages
  instead of 1,000, and after every ``CHECKPOINT_EVERY`` writes on the loop a
  ``PASSIVE`` checkpoint (it waits on no lock) runs in a thread of its own, one at a
  time, and no request waits for it. (Should that thread fall behind, SQLite's own
  checkpoint still bounds the WAL, and finds most of it copied already.) The frames
  written meanwhile are checkpointed on the loop after the next write (a few pages, a
  fraction of a millisecond): only a WAL checkpointed to its end starts again from its beginning, so
  without it the file would grow for as long as writes keep coming. (A sweep also
  checkpoints at its own pace, ``pacing``.)
"""

from __future__ import annotations

import asyncio
import logging
import threading
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from ..._errors import StoreError
from .._limits import BoundedSync, PerLoop
from .connections import is_busy, on_the_loop
from .executors import Context, SyncExecutor, Threaded
from .raw import RawStatements
from .runs import Program, Run

CHECKPOINT_EVERY = 256
"""Writes on the event loop between two checkpoints of the WAL (each write dirties a few
pages: about SQLite's own threshold of 1,000 pages)."""
LOOP_AUTOCHECKPOINT = 4000
"""WAL pages past which SQLite checkpoints in the loop connection's commit itself: a
bound kept for a checkpoint thread that falls behind, never reached while it keeps up."""

CheckpointThread = threading.Thread
"""What a checkpoint runs in (a test runs it at once instead)."""

log = logging.getLogger("lazysession")


class Deferred(Exception):
    """The running step would wait on the event loop: it goes on in a thread."""

    def __init__(self, run: Run | None = None) -> None:
        self.run = run


class InlineSync(SyncExecutor):
    """The blocking executor, run on the event loop: each wait it would have is a
    :class:`Deferred` instead. Each asyncio loop keeps one connection for its calls
    (they never overlap: none awaits), closed when the loop ends or at ``aclose``."""

    def __init__(self, context: Context, sync: SyncExecutor) -> None:
        super().__init__(context)
        self.sync = sync
        """The blocking executor, for what runs in a thread (the checkpoints)."""
        self.pinned = PerLoop(self._open, self._close)
        self.raw = RawStatements(context.engines.check_sync().dialect)
        self.unchecked = 0
        """Writes on a loop's connection since the last checkpoint began."""
        self.checkpointing: threading.Thread | None = None
        self.backfilled = False
        """A checkpoint from a thread ended: what was written meanwhile is to finish."""

    def _open(self) -> sa.Connection:
        engines = self.context.engines
        conn = engines.isolated(engines.check_sync(), autocommit=True).connect()
        conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint = {LOOP_AUTOCHECKPOINT}")
        return conn

    @staticmethod
    async def _close(conn: sa.Connection) -> None:
        try:
            conn.exec_driver_sql("PRAGMA wal_autocheckpoint = 1000")  # back in the pool
        finally:
            conn.close()

    def wrote(self, conn: sa.Connection) -> None:
        """A write committed on ``conn``, a loop's connection: every ``CHECKPOINT_EVERY``
        of them, start a checkpoint in a thread (unless one still runs); once one ended,
        finish it on ``conn``."""
        if self.backfilled:
            self.backfilled = False
            for statement in self.context.engines.dialect.after_sweep:
                conn.exec_driver_sql(statement)
        self.unchecked += 1
        if self.unchecked < CHECKPOINT_EVERY:
            return
        running = self.checkpointing
        if running is not None and running.is_alive():
            return
        self.unchecked = 0
        thread = CheckpointThread(target=self._checkpoint, name="lazysession-wal", daemon=True)
        self.checkpointing = thread
        thread.start()

    def _checkpoint(self) -> None:
        """The dialect's checkpoint (the sweep's, ``UpkeepOps.checkpoint``), as a call of
        the blocking side: bounded by the store's timeout, its errors a StoreError."""
        try:
            self.sync.call("checkpointing the WAL", self.context.upkeep.checkpoint())
        except StoreError as error:  # the next one tries again; writes are unaffected
            log.warning("lazysession: %s", error)
            return
        self.backfilled = True

    async def finish_checkpoint(self) -> None:
        """Wait for a checkpoint still running (at ``aclose``)."""
        running = self.checkpointing
        if running is not None and running.is_alive():
            await anyio.to_thread.run_sync(running.join)

    def _loop_connection(self) -> sa.Connection | None:
        """The running asyncio loop's connection; None under trio, whose loops may run
        in several threads at once (a pooled connection, which SQLite checkpoints)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return None
        return self.pinned.get()

    def _connect(self, engine: sa.Engine) -> AbstractContextManager[sa.Connection]:
        conn = self._loop_connection()
        return engine.connect() if conn is None else nullcontext(conn)

    def run(self, run: Run) -> Any:
        if run.bulk or run.call is not None:
            raise Deferred(run)
        try:
            result = super().run(run)
        except Deferred as deferred:
            deferred.run = run
            raise
        if run.writes and (conn := self._loop_connection()) is not None:
            self.wrote(conn)
        return result

    def _take_turn(self, turn: threading.Lock) -> bool:
        if not turn.acquire(blocking=False):
            raise Deferred
        return True

    def _begin_immediate(self, conn: sa.Connection) -> None:
        try:
            super()._begin_immediate(conn)
        except OperationalError as error:
            if is_busy(error):
                raise Deferred from None
            raise

    def _execute(self, conn: sa.Connection, run: Run, statement: Any, params: Any) -> Any:
        try:
            return self.raw.execute(conn.connection.dbapi_connection, statement, params)
        except Exception as error:
            if run.locked or not is_busy(error):
                raise
            run.pending = (statement, params)  # refused whole: sent again from the thread
            raise Deferred from None


class Inline(Threaded):
    """The async side of a SQLite file: each call on the event loop, the rest of a call
    that would wait in a worker thread."""

    def __init__(self, context: Context, sync: SyncExecutor) -> None:
        super().__init__(context, sync)
        self.here = InlineSync(context, sync)

    async def aclose(self) -> None:
        await self.here.pinned.aclose()
        await self.here.finish_checkpoint()

    async def call(self, action: str, program: Program[Any], prepare: bool = True) -> Any:
        context = self.context
        if prepare and not context.ready:  # creating the table may wait: all of it there
            return await super().call(action, program, prepare)
        with BoundedSync(action, context.errors, context.timeout):
            token = on_the_loop.set(True)
            try:
                return self.here.drive(action, program)
            except Deferred as deferred:
                left = deferred.run
            finally:
                on_the_loop.reset(token)
            return await anyio.to_thread.run_sync(self.sync.drive, action, program, left)
