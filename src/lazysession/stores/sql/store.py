"""Sessions in a SQL table, through SQLAlchemy: SQLite, PostgreSQL, MariaDB and MySQL.

Rules:
- Each operation is written once, in ``ops``, ``owners`` and ``upkeep`` (the sweep's
  pace in ``pacing``), and carried out by one executor per side (``executors``); the two
  faces below only hand it the call.
- Every call ends within ``timeout`` (a write already sent gets half that more).
- What differs between databases is in ``dialects``, one object per dialect.
- A SQLite file named with ``sqlite+aiosqlite`` is served by the stdlib driver, each
  call on the event loop unless it would wait there (``inline``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine

from ... import _json
from ..._errors import ConfigurationError
from ..._expiry import Clock, utc_now
from ..._identity import SessionInfo
from .._base import Changes, Merge, OnSwept, Record, Store, SyncStore, owner_of_data
from .._limits import check_timeout
from . import pacing
from .dialects import supported
from .engines import DRIVER_ERRORS, Engines, check_driver, dbapi_errors
from .executors import AsyncExecutor, Context, SyncExecutor, Threaded
from .inline import Inline
from .ops import SessionOps
from .owners import OwnerOps
from .schema import DEFAULT_TABLE, check_table_name, ddl, session_table
from .upkeep import UpkeepOps

DEFAULT_BATCH = 1_000
DEFAULT_TIMEOUT = 5.0


class SQLAlchemyStore(Store):
    """Sessions in one SQL table, ``lazysession_sessions`` by default.

    ``url_or_engine`` is a database URL or an engine of the application's (to share its
    pool). Async drivers (``sqlite+aiosqlite``, ``postgresql+asyncpg``,
    ``postgresql+psycopg``, ``mysql+asyncmy``, ``mysql+aiomysql``) serve the ASGI
    middleware; sync drivers (``sqlite``, ``postgresql+psycopg``, ``mysql+pymysql``)
    serve ``store.sync`` and the WSGI middleware. The table is created on first use
    unless ``create_table=False``.

    Every call ends within ``timeout`` seconds (default 5; a write already sent gets
    half that more): past it, or when the database fails, a
    :class:`~lazysession.StoreError` (see "Timeouts" in ``docs/stores.md``).
    The driver is imported, and the engines built, here: a missing driver is an error
    at configuration, and no blocking set-up waits for the first request. Engines the
    store makes keep their connections per event loop, and ``aclose()`` (called at the
    ASGI lifespan's shutdown) closes the calling loop's; an engine you pass in is yours
    to dispose of.

    A SQLite file serves the async side ``inline``: each call on the event loop, moved
    to a worker thread only where it would wait for a lock (a call takes tens of
    microseconds, a thread hop several times that). ``inline=False`` runs every call in
    a worker thread instead, for tests that flag any blocking call made on the event
    loop (blockbuster, as Starlette's own tests run). Other databases ignore it.
    """

    def __init__(
        self,
        url_or_engine: str | URL | Engine | AsyncEngine,
        *,
        table_name: str = DEFAULT_TABLE,
        metadata: sa.MetaData | None = None,
        batch_size: int = DEFAULT_BATCH,
        create_table: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        engine_options: Mapping[str, Any] | None = None,
        inline: bool = True,
        clock: Clock = utc_now,
    ) -> None:
        if batch_size < 1:
            raise ConfigurationError("batch_size must be at least 1")
        self.timeout = check_timeout(timeout, "SQLAlchemyStore")
        self.table = session_table(check_table_name(table_name), metadata)
        self.batch_size = batch_size
        self._clock = clock
        source: URL | Engine | AsyncEngine
        if isinstance(url_or_engine, (Engine, AsyncEngine)):
            source = url_or_engine
            name = url_or_engine.dialect.name
        else:
            try:
                source = make_url(url_or_engine)
                name = source.get_dialect().name
            except (ArgumentError, sa.exc.NoSuchModuleError) as error:
                raise ConfigurationError(f"SQLAlchemyStore: bad database URL: {error}") from None
            check_driver(source)
        self.dialect_name: str = name
        dialect = supported(name)
        if isinstance(source, URL):
            dialect.check_url(source)
        self._engines = Engines(source, dialect, self.timeout, engine_options or {})
        self._ops = SessionOps(self.table, dialect)
        self._owners = OwnerOps(self._ops)
        self._upkeep = UpkeepOps(self._ops)
        errors = DRIVER_ERRORS + tuple(
            error
            for engine in (self._engines.async_engine, self._engines.sync_engine)
            if engine is not None
            for error in dbapi_errors(engine.dialect)
        )
        self._context = Context(self._engines, self._upkeep, errors, self.timeout, create_table)
        sync = SyncExecutor(self._context)
        self._async: AsyncExecutor
        if not self._engines.threaded:
            self._async = AsyncExecutor(self._context)
        elif inline:
            self._async = Inline(self._context, sync)
        else:
            self._async = Threaded(self._context, sync)
        self._sync = _SyncSQLAlchemyStore(self, sync)

    # -- configuration ---------------------------------------------------------------------

    @property
    def _url(self) -> URL | None:
        """The database URL the store was given (None: an engine)."""
        return self._engines.url

    def check_async(self) -> AsyncEngine | None:
        """The async engine (the running event loop's, inside one), None for a SQLite
        file (served by the stdlib driver, see ``check_sync``), or a start-up error that
        names the driver to use instead."""
        return self._engines.check_async()

    def check_sync(self) -> Engine:
        """The sync engine, or a start-up error that names the driver to use instead."""
        return self._engines.check_sync()

    def ddl(self, dialect: Dialect | None = None) -> str:
        """The ``CREATE TABLE`` and ``CREATE INDEX`` statements, for a schema you manage."""
        return ddl(self.table, dialect or self._engines.sa_dialect())

    # -- the async face --------------------------------------------------------------------

    async def read(self, session_id: str) -> Record | None:
        """See :meth:`Store.read`."""
        op = self._ops.read(session_id, self._clock())
        record: Record | None = await self._async.call("loading a session", op)
        return record

    async def touch(self, session_id: str, *, expires_at: datetime, base: object = None) -> bool:
        """See :meth:`Store.touch`."""
        op = self._ops.touch(session_id, self._clock(), expires_at, base)
        touched: bool = await self._async.call("touching a session", op)
        return touched

    async def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        """See :meth:`Store.save`."""
        text, owner = _json.dumps(data), owner_of_data(data)
        op = self._ops.save(session_id, text, owner, self._clock(), expires_at)
        await self._async.call("saving a session", op)

    async def delete(self, session_id: str) -> None:
        """See :meth:`Store.delete`."""
        op = self._ops.delete(session_id, self._clock())
        await self._async.call("deleting a session", op)

    async def claim(self, ended_id: str, new_id: str) -> bool:
        """See :meth:`Store.claim`."""
        op = self._ops.claim(ended_id, new_id, self._clock())
        claimed: bool = await self._async.call("saving a session", op)
        return claimed

    async def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        """See :meth:`Store.update`."""
        op = self._ops.update(session_id, changes, self._clock(), expires_at)
        merged: Merge = await self._async.call("saving a session", op)
        return merged

    async def rotate(
        self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime
    ) -> Merge:
        """See :meth:`Store.rotate`."""
        op = self._ops.rotate(old_id, new_id, changes, self._clock(), expires_at)
        merged: Merge = await self._async.call("rotating a session", op)
        return merged

    async def count(self) -> int:
        """See :meth:`Store.count`."""
        counted: int = await self._async.call("counting sessions", self._upkeep.count())
        return counted

    async def sessions_of(self, owner: str) -> list[SessionInfo]:
        """See :meth:`Store.sessions_of`."""
        op = self._owners.sessions_of(owner, self._clock())
        found: list[SessionInfo] = await self._async.call("listing sessions", op)
        return found

    async def revoke(self, owner: str, handle: str) -> bool:
        """See :meth:`Store.revoke`."""
        op = self._owners.revoke(owner, handle, self._clock())
        ended: bool = await self._async.call("revoking a session", op)
        return ended

    async def revoke_all(self, owner: str, *, keep: str | None = None) -> int:
        """See :meth:`Store.revoke_all`."""
        op = self._owners.revoke_all(owner, keep, self._clock())
        ended: int = await self._async.call("revoking sessions", op)
        return ended

    async def count_expired(self) -> int:
        """Expired sessions not yet swept: the backlog a sweep would delete now."""
        op = self._upkeep.count_expired(self._clock())
        counted: int = await self._async.call("counting expired sessions", op)
        return counted

    async def oldest_created(self) -> datetime | None:
        """When the oldest live session began (None without any)."""
        op = self._upkeep.oldest_created(self._clock())
        oldest: datetime | None = await self._async.call("reading statistics", op)
        return oldest

    async def table_bytes(self) -> int | None:
        """Bytes the table and its indexes take, where the database can tell."""
        size: int | None = await self._async.call("reading statistics", self._upkeep.table_bytes())
        return size

    async def has_table(self) -> bool:
        """Whether the table is there (without creating it; the driver's errors are
        raised as they are, for an operator to read)."""
        name = self.table.name
        found: bool = await self._async.inspect(lambda conn: sa.inspect(conn).has_table(name))
        return found

    async def sweep(
        self,
        *,
        on_batch: Callable[[int], None] | None = None,
        full_speed: bool = False,
        on_swept: OnSwept | None = None,
    ) -> int:
        """Delete every expired session, batch by batch; ``on_batch`` hears the running
        total after each batch (for progress reports). ``full_speed`` skips the rests
        between batches (an operator's one-off purge). ``on_swept`` hears the ``(key,
        owner)`` of the owned sessions each batch deleted, each once across replicas
        sweeping at once."""
        program = pacing.sweep(
            self._upkeep, self._clock(), self.batch_size, on_batch, full_speed, on_swept
        )
        deleted: int = await self._async.drive("sweeping expired sessions", program)
        return deleted

    async def aclose(self) -> None:
        """Close the connections the store opened: the running event loop's, and the
        blocking side's. The store stays usable; its next call connects again."""
        await self._async.aclose()
        if await self._engines.aclose():
            self._context.ready = not self._context.create_table  # the database went

    @property
    def sync(self) -> _SyncSQLAlchemyStore:
        """The blocking face (WSGI, the CLI): the same operations, and the statistics."""
        return self._sync


class _SyncSQLAlchemyStore(SyncStore):
    """The blocking face: the same operations, run by the blocking executor."""

    def __init__(self, store: SQLAlchemyStore, executor: SyncExecutor) -> None:
        self._store = store
        self._ops = store._ops
        self._owners = store._owners
        self._upkeep = store._upkeep
        self._clock = store._clock
        self._exec = executor
        self._run = executor.run  # one run, unbounded (a test steps through an operation)

    def read(self, session_id: str) -> Record | None:
        op = self._ops.read(session_id, self._clock())
        record: Record | None = self._exec.call("loading a session", op)
        return record

    def touch(self, session_id: str, *, expires_at: datetime, base: object = None) -> bool:
        op = self._ops.touch(session_id, self._clock(), expires_at, base)
        touched: bool = self._exec.call("touching a session", op)
        return touched

    def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        text, owner = _json.dumps(data), owner_of_data(data)
        op = self._ops.save(session_id, text, owner, self._clock(), expires_at)
        self._exec.call("saving a session", op)

    def delete(self, session_id: str) -> None:
        self._exec.call("deleting a session", self._ops.delete(session_id, self._clock()))

    def claim(self, ended_id: str, new_id: str) -> bool:
        claimed: bool = self._exec.call(
            "saving a session", self._ops.claim(ended_id, new_id, self._clock())
        )
        return claimed

    def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        op = self._ops.update(session_id, changes, self._clock(), expires_at)
        merged: Merge = self._exec.call("saving a session", op)
        return merged

    def rotate(self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        op = self._ops.rotate(old_id, new_id, changes, self._clock(), expires_at)
        merged: Merge = self._exec.call("rotating a session", op)
        return merged

    def count(self) -> int:
        counted: int = self._exec.call("counting sessions", self._upkeep.count())
        return counted

    def sessions_of(self, owner: str) -> list[SessionInfo]:
        op = self._owners.sessions_of(owner, self._clock())
        found: list[SessionInfo] = self._exec.call("listing sessions", op)
        return found

    def revoke(self, owner: str, handle: str) -> bool:
        op = self._owners.revoke(owner, handle, self._clock())
        ended: bool = self._exec.call("revoking a session", op)
        return ended

    def revoke_all(self, owner: str, *, keep: str | None = None) -> int:
        op = self._owners.revoke_all(owner, keep, self._clock())
        ended: int = self._exec.call("revoking sessions", op)
        return ended

    def count_expired(self) -> int:
        op = self._upkeep.count_expired(self._clock())
        counted: int = self._exec.call("counting expired sessions", op)
        return counted

    def oldest_created(self) -> datetime | None:
        op = self._upkeep.oldest_created(self._clock())
        oldest: datetime | None = self._exec.call("reading statistics", op)
        return oldest

    def table_bytes(self) -> int | None:
        size: int | None = self._exec.call("reading statistics", self._upkeep.table_bytes())
        return size

    def sweep(
        self,
        *,
        on_batch: Callable[[int], None] | None = None,
        full_speed: bool = False,
        on_swept: OnSwept | None = None,
    ) -> int:
        store = self._store
        program = pacing.sweep(
            self._upkeep, self._clock(), store.batch_size, on_batch, full_speed, on_swept
        )
        deleted: int = self._exec.drive("sweeping expired sessions", program)
        return deleted

    def close(self) -> None:
        """Close the blocking side's connections (the store stays usable)."""
        self._store._engines.close_sync()
