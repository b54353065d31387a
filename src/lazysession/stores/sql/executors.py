"""The executors of the SQL store: one per side, each running the operations and
programs of ``ops``, ``owners``, ``upkeep`` and ``pacing`` as they are written there.

Rules:
- A call (an operation, with the table's creation first if it is still to do) runs
  within the store's timeout: under :class:`Bounded` on the async side, under
  :class:`BoundedSync` on the blocking side, each run reported to it (``tracked``).
- A run's driver errors are raised as :class:`~lazysession.StoreError` and thrown into
  its operation; a program's rests are sleeps, and each of its ``Call``s is a call of
  its own.
- A run opens the connection it asks for: autocommitted statements, or a transaction
  (``BEGIN IMMEDIATE`` where the dialect has no row locks, else the dialect's isolation).
  Where the dialect serializes writes, this process's writers take turns, each waiting
  no longer than its call has left.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..._errors import StoreError
from .._base import StoreErrors
from .._limits import Bounded, BoundedSync, remaining, tracked, tracked_sync
from .connections import is_busy
from .engines import Engines
from .runs import Call, Plan, Program, Rest, Run
from .upkeep import UpkeepOps

T = TypeVar("T")


@dataclass(eq=False)
class Context:
    """What both sides of one store share."""

    engines: Engines
    upkeep: UpkeepOps
    errors: tuple[type[BaseException], ...]
    timeout: float
    create_table: bool
    ready: bool = False
    """The table is known to be there (or is not the store's to create)."""
    async_turn: anyio.Lock | None = None
    sync_turn: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.ready = not self.create_table

    def catch(self, action: str) -> StoreErrors:
        return StoreErrors(action, self.errors)

    def no_turn(self) -> StoreError:
        return StoreError(
            f"writing a session failed: other writers held SQLite's write lock past the "
            f"store's timeout ({self.timeout:g} s)"
        )


class AsyncExecutor:
    """Runs calls with the async engine of the running event loop."""

    def __init__(self, context: Context) -> None:
        self.context = context

    async def call(self, action: str, program: Program[Any], prepare: bool = True) -> Any:
        """Run ``program`` as one call, within the store's timeout (creating the table
        first, if that is still to do, unless ``prepare`` is false)."""
        context = self.context
        with Bounded(action, context.errors, context.timeout):
            if prepare and not context.ready:
                await self.drive(action, context.upkeep.create(context.engines.own_file))
                context.ready = True
            return await self.drive(action, program)

    async def aclose(self) -> None:
        """Close what the executor holds for the running event loop."""

    async def inspect(self, look: Callable[[sa.Connection], T]) -> T:
        """``look`` at the database on a (blocking) connection of its own, unbounded."""
        async with self.context.engines.here().connect() as conn:
            return await conn.run_sync(look)

    async def drive(self, action: str, program: Program[Any]) -> Any:
        try:
            step = next(program)
            while True:
                try:
                    if isinstance(step, Run):
                        with self.context.catch(action):
                            result = await tracked(step.writes, self._run(step))
                    elif isinstance(step, Rest):
                        await anyio.sleep(step.seconds)
                        result = None
                    else:
                        result = await self.call(step.action, step.op)
                except StoreError as error:
                    step = program.throw(error)
                else:
                    step = program.send(result)
        except StopIteration as done:
            return done.value

    async def _run(self, run: Run) -> Any:
        engines = self.context.engines
        engine = engines.here()
        if run.call is not None:
            async with engines.isolated(engine, autocommit=False).connect() as conn:
                result = await conn.run_sync(run.call)
                await conn.commit()
                return result
        assert run.plan is not None
        single = engines.isolated(engine, autocommit=True)
        if not run.locked:
            async with self._turn(run.writes), single.connect() as conn:
                return await _send_async(conn, run.plan)
        if engines.dialect.begins_immediate:
            async with self._turn(True), single.connect() as conn:
                for statement in run.before:
                    await conn.exec_driver_sql(statement)
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    result = await _send_async(conn, run.plan)
                except BaseException:
                    await conn.exec_driver_sql("ROLLBACK")
                    raise
                await conn.exec_driver_sql("COMMIT")
                for statement in run.after:
                    await conn.exec_driver_sql(statement)
                return result
        async with engines.isolated(engine, autocommit=False).connect() as conn:
            if run.options:
                conn = await conn.execution_options(**run.options)
            for statement in run.before:
                await conn.exec_driver_sql(statement)
                await conn.commit()
            async with conn.begin():
                result = await _send_async(conn, run.plan)
            for statement in run.after:
                await conn.exec_driver_sql(statement)
                await conn.commit()
            return result

    @asynccontextmanager
    async def _turn(self, writes: bool) -> AsyncIterator[None]:
        context = self.context
        if not writes or not context.engines.dialect.serializes_writes:
            yield
            return
        if context.async_turn is None:
            context.async_turn = anyio.Lock()
        with anyio.move_on_after(remaining(context.timeout)) as waiting:
            await context.async_turn.acquire()
        if waiting.cancelled_caught:
            raise context.no_turn()
        try:
            yield
        finally:
            context.async_turn.release()


async def _send_async(conn: AsyncConnection, plan: Plan[Any]) -> Any:
    """Send a plan's statements on ``conn``, each result back into the plan."""
    try:
        statement, params = next(plan)
        while True:
            statement, params = plan.send(await conn.execute(statement, params))
    except StopIteration as done:
        return done.value


class SyncExecutor:
    """Runs calls with the blocking engine; each wait is bounded by what the call has
    left of the timeout."""

    def __init__(self, context: Context) -> None:
        self.context = context

    def call(self, action: str, program: Program[Any], prepare: bool = True) -> Any:
        context = self.context
        with BoundedSync(action, context.errors, context.timeout):
            if prepare and not context.ready:
                self.drive(action, context.upkeep.create(context.engines.own_file))
                context.ready = True
            return self.drive(action, program)

    def inspect(self, look: Callable[[sa.Connection], T]) -> T:
        with self.context.engines.check_sync().connect() as conn:
            return look(conn)

    def drive(
        self, action: str, program: Program[Any], first: Call | Run | Rest | None = None
    ) -> Any:
        """Drive ``program`` from its start, or from ``first``, the step it is waiting
        on (the rest of a call that began on the event loop)."""
        try:
            step = next(program) if first is None else first
            while True:
                try:
                    if isinstance(step, Run):
                        with self.context.catch(action):
                            result = tracked_sync(step.writes, self.run, step)
                    elif isinstance(step, Rest):
                        time.sleep(step.seconds)
                        result = None
                    else:
                        result = self.call(step.action, step.op)
                except StoreError as error:
                    step = program.throw(error)
                else:
                    step = program.send(result)
        except StopIteration as done:
            return done.value

    def run(self, run: Run) -> Any:
        """Carry out one run."""
        engines = self.context.engines
        engine = engines.check_sync()
        if run.call is not None:
            with engines.isolated(engine, autocommit=False).connect() as conn:
                result = run.call(conn)
                conn.commit()
                return result
        assert run.plan is not None
        single = engines.isolated(engine, autocommit=True)
        if not run.locked:
            if not run.writes:
                with self._connect(single) as conn:
                    return self._send(conn, run)
            with self._turn(True), self._connect(single) as conn:
                return self._send(conn, run)
        if engines.dialect.begins_immediate:
            with self._turn(True), self._connect(single) as conn:
                for statement in run.before:
                    conn.exec_driver_sql(statement)
                self._begin_immediate(conn)
                try:
                    result = self._send(conn, run)
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
                for statement in run.after:
                    conn.exec_driver_sql(statement)
                return result
        with engines.isolated(engine, autocommit=False).connect() as conn:
            if run.options:
                conn = conn.execution_options(**run.options)
            for statement in run.before:
                conn.exec_driver_sql(statement)
                conn.commit()
            with conn.begin():
                result = self._send(conn, run)
            for statement in run.after:
                conn.exec_driver_sql(statement)
                conn.commit()
            return result

    @contextmanager
    def _turn(self, writes: bool) -> Iterator[None]:
        context = self.context
        if not writes or not context.engines.dialect.serializes_writes:
            yield
            return
        if not self._take_turn(context.sync_turn):
            raise context.no_turn()
        try:
            yield
        finally:
            context.sync_turn.release()

    # Where a call served on the event loop (``inline.InlineSync``) would have to wait.

    def _connect(self, engine: sa.Engine) -> AbstractContextManager[sa.Connection]:
        return engine.connect()

    def _take_turn(self, turn: threading.Lock) -> bool:
        return turn.acquire(timeout=remaining(self.context.timeout))

    def _begin_immediate(self, conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    def _execute(self, conn: sa.Connection, run: Run, statement: Any, params: Any) -> Any:
        if run.locked or not self.context.engines.dialect.serializes_writes:
            return conn.execute(statement, params)
        # SQLite, a statement on its own: refused with SQLITE_BUSY, it had no effect. The
        # busy wait does not cover a WAL snapshot that another writer moved past while
        # the statement read (SQLITE_BUSY_SNAPSHOT: refused at once), so it is sent
        # again, on a fresh snapshot, until the deadline.
        pause = 0.001
        while True:
            try:
                return conn.execute(statement, params)
            except sa.exc.OperationalError as error:
                left = remaining(self.context.timeout)
                if not is_busy(error) or left <= pause:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _send(self, conn: sa.Connection, run: Run) -> Any:
        """Send the run's statements on ``conn`` (first the one it still had to send,
        if any), each result back into its plan."""
        plan = run.plan
        assert plan is not None
        try:
            statement, params = run.pending or next(plan)
            run.pending = None
            while True:
                statement, params = plan.send(self._execute(conn, run, statement, params))
        except StopIteration as done:
            return done.value


class Threaded(AsyncExecutor):
    """The async side of a store served by its blocking engine (a SQLite file): each
    call runs whole in one worker-thread call (cancellable between the calls of a
    program, such as the sweep's batches)."""

    def __init__(self, context: Context, sync: SyncExecutor) -> None:
        super().__init__(context)
        self.sync = sync

    async def call(self, action: str, program: Program[Any], prepare: bool = True) -> Any:
        return await anyio.to_thread.run_sync(self.sync.call, action, program, prepare)

    async def inspect(self, look: Callable[[sa.Connection], T]) -> T:
        return await anyio.to_thread.run_sync(self.sync.inspect, look)
