"""Sessions in a SQL table, through SQLAlchemy: SQLite, PostgreSQL, MariaDB and MySQL.

Rules:
- Every statement is built once, here, and run unchanged by the async side (ASGI, async
  drivers) and the sync side (WSGI, sync drivers). Only the ``execute`` calls are twins.
- ``now`` comes from the store's clock and is passed as a parameter, so every dialect
  compares expiry the same way and tests can move time by hand.
- The sweep deletes in batches of at most ``batch_size`` rows, one short transaction
  each, in order of expiry. On PostgreSQL rows are claimed with ``FOR UPDATE SKIP
  LOCKED`` and each batch resumes where the last ended (never rescanning the dead index
  entries behind it); on MariaDB/MySQL each batch is one ordered ``DELETE ... LIMIT``.
  Replicas sweeping at once never deadlock, and their counts add up to exactly the rows
  that were expired. SQLite's batches are paced to a time budget (``SweepPacer``), since
  every writer waits behind them; elsewhere the built-in sweep rests between batches.
- A SQLite file named with ``sqlite+aiosqlite`` is served by the stdlib driver in worker
  threads, one thread call per store call.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, overload

import anyio
import anyio.lowlevel
import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InvalidRequestError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.schema import CreateIndex, CreateTable

from .. import _json
from .._errors import ConfigurationError, StoreError
from .._expiry import Clock, utc_now
from .._session import Changes
from ._base import Merge, Record, Store, StoreErrors, SyncStore
from ._sql_ops import Op, Plan, Run, SessionOps

if TYPE_CHECKING:
    pass

DEFAULT_TABLE = "lazysession_sessions"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,50}$")
DEFAULT_BATCH = 1_000

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg (or postgresql+psycopg)",
    "mysql": "mysql+asyncmy (or mysql+aiomysql)",
    "mariadb": "mysql+asyncmy (or mysql+aiomysql)",
}
_SYNC_DRIVERS = {
    "sqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on every dialect: ``timestamptz`` on PostgreSQL, UTC-naive
    ``DATETIME(6)`` on MariaDB/MySQL and SQLite, always handed back aware."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=dialect.name == "postgresql"))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("session timestamps must be timezone-aware")
        value = value.astimezone(timezone.utc)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def session_table(name: str = DEFAULT_TABLE, metadata: sa.MetaData | None = None) -> sa.Table:
    """The sessions table; hand it to Alembic if you manage the schema yourself."""
    return sa.Table(
        name,
        metadata if metadata is not None else sa.MetaData(),
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column(
            "data", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"), nullable=False
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Index(f"ix_{name}_expires_at", "expires_at"),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )


class _Statements:
    """Every statement the store runs, for one table and one dialect."""

    def __init__(self, table: sa.Table, dialect_name: str) -> None:
        self.table = table
        self.dialect = dialect_name
        c = table.c
        self.count = (
            sa.select(sa.func.count())
            .select_from(table)
            .where(sa.not_(c.data.startswith("=>", autoescape=True)))  # retired ids
        )
        self.oldest = sa.select(sa.func.min(c.created_at)).where(c.expires_at > sa.bindparam("now"))
        self.count_expired = (
            sa.select(sa.func.count()).select_from(table).where(c.expires_at <= sa.bindparam("now"))
        )

    @property
    def size_query(self) -> sa.TextClause | None:
        name = self.table.name
        if self.dialect == "postgresql":
            return sa.text(f"SELECT pg_total_relation_size('{name}')")
        if self.dialect in ("mysql", "mariadb"):
            return sa.text(
                "SELECT data_length + index_length FROM information_schema.tables "  # noqa: S608
                f"WHERE table_schema = DATABASE() AND table_name = '{name}'"
            )
        if self.dialect == "sqlite":
            return sa.text(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
            )
        return None

    @property
    def transaction_isolation(self) -> str:
        """The isolation of the store's few transactions (its engines are autocommit):
        each dialect's own default, but READ COMMITTED on MariaDB/MySQL, where locking
        reads see the latest row either way and no gap locks are taken."""
        return "SERIALIZABLE" if self.dialect == "sqlite" else "READ COMMITTED"

    @property
    def locks_by_begin_immediate(self) -> bool:
        """SQLite has no row locks: a merge takes the database's write lock up front."""
        return self.dialect == "sqlite"

    @property
    def before_batch(self) -> list[str]:
        """SQLite: the batch's commit must not checkpoint the WAL while writers wait."""
        return ["PRAGMA wal_autocheckpoint = 0"] if self.dialect == "sqlite" else []

    @property
    def after_batch(self) -> list[str]:
        """SQLite: checkpoint after each batch, outside the writers' turn, so the WAL
        stays small and no save's commit has to checkpoint the sweep's pages."""
        if self.dialect != "sqlite":
            return []
        return ["PRAGMA wal_checkpoint(PASSIVE)", "PRAGMA wal_autocheckpoint = 1000"]

    @property
    def sweep_options(self) -> dict[str, Any]:
        """READ COMMITTED on MariaDB/MySQL: no gap locks, so a sweep never blocks the
        inserts of live sessions."""
        if self.dialect in ("mysql", "mariadb"):
            return {"isolation_level": "READ COMMITTED"}
        return {}

    def sweep_batch(self, now: datetime, after: datetime | None, size: int) -> sa.TextClause:
        """One batch: delete up to ``size`` expired rows, oldest first, from where
        the last batch ended; the result is one row (rows deleted, last expiry) or, on
        MariaDB/MySQL, a rowcount."""
        table = self.table.name
        if self.dialect == "postgresql":
            # Rows are claimed by physical address under FOR UPDATE SKIP LOCKED (stable
            # until the statement ends): replicas take disjoint rows and never wait, and no
            # primary-key lookup is needed (six times faster than IN (SELECT session_id)).
            sql = f"""
                WITH deleted AS (
                    DELETE FROM {table} WHERE ctid = ANY(ARRAY(
                        SELECT ctid FROM {table}
                        WHERE expires_at <= :now AND expires_at >= :after
                        ORDER BY expires_at LIMIT :n FOR UPDATE SKIP LOCKED))
                    RETURNING expires_at)
                SELECT count(*), max(expires_at) FROM deleted"""  # noqa: S608
        elif self.dialect == "sqlite":
            # SQLite has one writer at a time, so no claiming is needed, and it removes
            # index entries as it deletes (no dead entries to skip, so no resume point);
            # the expiry index holds the rowid, so a batch is found without the table.
            sql = f"""
                DELETE FROM {table} WHERE rowid IN (
                    SELECT rowid FROM {table} WHERE expires_at <= :now
                    ORDER BY expires_at LIMIT :n)"""  # noqa: S608
        else:
            # One statement that walks the expiry index in order: concurrent sweepers
            # take row locks in the same order, so they queue briefly but never deadlock
            # (claiming with SKIP LOCKED and then deleting by key does deadlock).
            sql = f"DELETE FROM {table} WHERE expires_at <= :now ORDER BY expires_at LIMIT :n"  # noqa: S608
        statement = sa.text(sql).bindparams(
            sa.bindparam("now", type_=UTCDateTime()), sa.bindparam("n", size)
        )
        if self.dialect == "postgresql":
            statement = statement.bindparams(
                sa.bindparam("after", after or _EPOCH, type_=UTCDateTime())
            )
        return statement.bindparams(now=now)

    def read_batch(
        self, result: sa.CursorResult[Any], after: datetime | None
    ) -> tuple[int, datetime | None]:
        """Rows a sweep batch deleted, and where the next batch resumes."""
        if self.dialect == "postgresql":
            row: Sequence[Any] = tuple(result.one())
            return int(row[0]), _as_utc(row[1]) or after
        return result.rowcount, None


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# SQLite admits one writer at a time, and a batch's commit and checkpoint slow every other
# writer of the file: batches there are sized to take about this long, all included.
SQLITE_BATCH_SECONDS = 0.01
# Elsewhere batches are fixed, and the built-in sweep rests half as long as each batch took
# between batches, leaving the database (and, on small machines, the CPU) to live traffic.
SWEEP_REST = 0.5
_SMALLEST_PACED_BATCH = 50


class SweepPacer:
    """Batch sizes for a sweep. Without a ``budget`` every batch takes ``largest`` rows;
    with one, each batch is sized from the last one's pace to take about ``budget``
    seconds (never more than ``largest`` rows, never fewer than 50)."""

    __slots__ = ("budget", "largest", "size")

    def __init__(self, largest: int, budget: float | None) -> None:
        self.largest = largest
        self.budget = budget
        self.size = largest if budget is None else max(1, min(largest, 4 * _SMALLEST_PACED_BATCH))

    def rest(self, seconds: float) -> float:
        """How long to pause after a batch that took ``seconds``."""
        return 0.0 if self.budget is not None else seconds * SWEEP_REST

    def record(self, deleted: int, seconds: float) -> None:
        """Hear how the last batch went; a short batch (the last one) teaches nothing."""
        if self.budget is None or deleted < self.size or seconds <= 0:
            return
        paced = int(deleted / seconds * self.budget)
        self.size = max(min(_SMALLEST_PACED_BATCH, self.largest), min(self.largest, paced))


async def _send_async(conn: AsyncConnection, plan: Plan[Any]) -> Any:
    """Send a plan's statements on ``conn``, each result back into the plan."""
    try:
        statement, params = next(plan)
        while True:
            statement, params = plan.send(await conn.execute(statement, params))
    except StopIteration as done:
        return done.value


def _send(conn: Connection, plan: Plan[Any]) -> Any:
    try:
        statement, params = next(plan)
        while True:
            statement, params = plan.send(conn.execute(statement, params))
    except StopIteration as done:
        return done.value


# Creating the table races other processes doing the same; SQLite can answer 'database
# is locked' at once (switching to WAL, or a schema change seen mid-read), so retry.
_CREATE_ATTEMPTS = 6


def _create_backoff(attempt: int) -> float:
    return float(0.02 * 2**attempt * (0.5 + random.random()))  # noqa: S311 - jitter only


CONNECT_TIMEOUT = 5


def _engine_defaults(url: URL) -> dict[str, Any]:
    """Pool and timeouts for engines the store makes itself (``engine_options`` wins).

    A pool big enough for a busy ASGI worker: past ``pool_size``, SQLAlchemy opens
    overflow connections and closes them on return, which costs a connect per request.
    A connect timeout, so an unreachable database is an error in seconds, not a hang.
    Autocommit by default: most of the store's work is one statement, and switching a
    pooled connection's isolation level on every checkout cost more than the query (a
    SQLite read: 106 µs against 40 µs); the few transactions ask for theirs.
    Statement parameters are session data and hashed ids: SQLAlchemy keeps them out of
    its log and its error messages (``hide_parameters``).
    """
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if not database or database == ":memory:" or "mode=memory" in database:
            # one shared in-memory connection; no pool to size
            return {"isolation_level": "AUTOCOMMIT", "hide_parameters": True}
        return {
            "pool_size": 20,
            "max_overflow": 10,
            "pool_timeout": 10,
            "isolation_level": "AUTOCOMMIT",
            "hide_parameters": True,
        }
    driver = url.get_driver_name()
    connect_args: dict[str, Any] = {
        "asyncpg": {"timeout": CONNECT_TIMEOUT},
        "psycopg": {"connect_timeout": CONNECT_TIMEOUT},
        "psycopg2": {"connect_timeout": CONNECT_TIMEOUT},
        "asyncmy": {"connect_timeout": CONNECT_TIMEOUT},
        "aiomysql": {"connect_timeout": CONNECT_TIMEOUT},
        "pymysql": {"connect_timeout": CONNECT_TIMEOUT},
    }.get(driver, {})
    return {
        "pool_size": 20,
        "max_overflow": 10,
        "pool_timeout": 10,
        "connect_args": connect_args,
        "isolation_level": "AUTOCOMMIT",
        "hide_parameters": True,
    }


def _as_utc(value: datetime | None) -> datetime | None:
    """A timestamp from a raw-SQL result, aware whatever the driver handed back."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


_DRIVER_ERRORS = (DBAPIError, sa.exc.TimeoutError, OSError, asyncio.TimeoutError)


def _store_errors(action: str) -> StoreErrors:
    """Driver errors surface as :class:`~lazysession.StoreError`, naming what failed."""
    return StoreErrors(action, _DRIVER_ERRORS)


class SQLAlchemyStore(Store):
    """Sessions in one SQL table, ``lazysession_sessions`` by default.

    ``url_or_engine`` is a database URL or an engine of the application's (to share its
    pool). Async drivers (``sqlite+aiosqlite``, ``postgresql+asyncpg``,
    ``postgresql+psycopg``, ``mysql+asyncmy``, ``mysql+aiomysql``) serve the ASGI
    middleware; sync drivers (``sqlite``, ``postgresql+psycopg``, ``mysql+pymysql``)
    serve ``store.sync`` and the WSGI middleware. The table is created on first use
    unless ``create_table=False``.
    """

    def __init__(
        self,
        url_or_engine: str | URL | Engine | AsyncEngine,
        *,
        table_name: str = DEFAULT_TABLE,
        metadata: sa.MetaData | None = None,
        batch_size: int = DEFAULT_BATCH,
        create_table: bool = True,
        engine_options: Mapping[str, Any] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        if batch_size < 1:
            raise ConfigurationError("batch_size must be at least 1")
        if not _IDENTIFIER.match(table_name):
            raise ConfigurationError(f"table_name={table_name!r}: use letters, digits and _")
        self.table = session_table(table_name, metadata)
        self.batch_size = batch_size
        self._clock = clock
        self._create_table = create_table
        self._engine_options = dict(engine_options or {})
        self._owns_engines = not isinstance(url_or_engine, (Engine, AsyncEngine))
        self._url: URL | None = None
        self._async_engine: AsyncEngine | None = None
        self._sync_engine: Engine | None = None
        if isinstance(url_or_engine, AsyncEngine):
            self._async_engine = url_or_engine
            dialect = url_or_engine.dialect
        elif isinstance(url_or_engine, Engine):
            self._sync_engine = url_or_engine
            dialect = url_or_engine.dialect
        else:
            try:
                self._url = make_url(url_or_engine)
                dialect = self._url.get_dialect()()
            except (ArgumentError, sa.exc.NoSuchModuleError) as error:
                raise ConfigurationError(f"SQLAlchemyStore: bad database URL: {error}") from None
        self.dialect_name: str = dialect.name
        self._sql = _Statements(self.table, self.dialect_name)
        self._ops = SessionOps(self.table, self.dialect_name)
        self._async_ready = False
        # Engines the store makes are autocommit (see _engine_defaults) unless the caller's
        # engine_options choose another isolation level.
        self._autocommit = (
            self._owns_engines
            and self._engine_options.get("isolation_level", "AUTOCOMMIT") == "AUTOCOMMIT"
        )
        self._views: dict[tuple[int, bool], Any] = {}
        self._async_ready_lock: anyio.Lock | None = None
        self._sync_ready = False
        self._sync_ready_lock = threading.Lock()
        # SQLite lets one writer in at a time and makes the others poll with growing
        # sleeps; within this process, writers take turns in order instead.
        self._serialize_writes = self.dialect_name == "sqlite"
        self._async_write_lock: anyio.Lock | None = None
        self._sync_write_lock = threading.Lock()
        self._sync = _SyncSQLAlchemyStore(self)
        # A SQLite file reached through aiosqlite: each statement would cross to aiosqlite's
        # thread and back several times (ten hops for one read, about 1.8 ms on a busy
        # 2-core machine). Instead each store call runs whole, with the stdlib driver, in
        # one worker-thread call: four times faster, and all of this process's writers
        # take turns behind one lock.
        self._threads = (
            self._sqlite_file and self._url is not None and self._url.get_dialect().is_async
        )

    # -- engines ---------------------------------------------------------------------------

    def check_async(self) -> AsyncEngine:
        """The async engine, or a start-up error that names the driver to use instead."""
        if self._async_engine is None:
            if self._url is None:
                raise ConfigurationError(
                    "SQLAlchemyStore was given a sync Engine; the ASGI middleware needs an "
                    f"AsyncEngine or an async URL such as {self._suggest(_ASYNC_DRIVERS)}://..."
                )
            try:
                self._async_engine = create_async_engine(
                    self._url, **{**_engine_defaults(self._url), **self._engine_options}
                )
            except InvalidRequestError:
                raise ConfigurationError(
                    f"SQLAlchemyStore({self._url.render_as_string()!r}) uses a sync driver; the "
                    f"ASGI middleware needs an async one: {self._suggest(_ASYNC_DRIVERS)}://..."
                ) from None
            self._tune_sqlite(self._async_engine.sync_engine)
        return self._async_engine

    def check_sync(self) -> Engine:
        """The sync engine, or a start-up error that names the driver to use instead."""
        if self._sync_engine is None:
            url = self._url
            if url is not None and self._sqlite_file and url.get_dialect().is_async:
                url = url.set(drivername="sqlite")  # the stdlib driver reaches the same file
            if url is None or url.get_dialect().is_async:
                raise ConfigurationError(
                    "this SQLAlchemyStore has an async driver; WSGI and command-line use need a "
                    f"sync one, such as {self._suggest(_SYNC_DRIVERS)}://..."
                )
            self._sync_engine = sa.create_engine(
                url, **{**_engine_defaults(url), **self._engine_options}
            )
            self._tune_sqlite(self._sync_engine)
        return self._sync_engine

    def _suggest(self, table: Mapping[str, str]) -> str:
        return table.get(self.dialect_name, "an appropriate driver")

    @property
    def _sqlite_file(self) -> bool:
        """A SQLite database file the store opened itself (not in memory, not an engine
        of the application's): the store may tune it."""
        if self.dialect_name != "sqlite" or self._url is None:
            return False
        database = self._url.database or ""
        return bool(database) and database != ":memory:" and "mode=memory" not in database

    def _tune_sqlite(self, engine: Engine) -> None:
        """A busy timeout instead of 'database is locked' under contention, and, with WAL
        (switched on once, at table creation), commits without an fsync each."""
        if not self._sqlite_file:
            return

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout = 10000")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()

    # -- schema ----------------------------------------------------------------------------

    def ddl(self, dialect: Dialect | None = None) -> str:
        """The ``CREATE TABLE`` and ``CREATE INDEX`` statements, for a schema you manage."""
        if dialect is None:
            if self._url is not None:
                dialect = self._url.get_dialect()()
            else:
                engine = self._async_engine or self._sync_engine
                assert engine is not None
                dialect = engine.dialect
        statements = [CreateTable(self.table)] + [CreateIndex(i) for i in self.table.indexes]
        return ";\n".join(str(s.compile(dialect=dialect)).strip() for s in statements) + ";\n"

    def _create(self, connection: Connection) -> None:
        """Create the table unless it exists; a replica that loses the race to another
        one's CREATE finds the table there and goes on."""
        if self._sqlite_file:
            # WAL lets readers go on while the sweep writes; it is stored in the file.
            connection.exec_driver_sql("PRAGMA journal_mode = WAL")
            connection.commit()
        try:
            with connection.begin_nested() if connection.in_transaction() else connection.begin():
                if self.dialect_name == "postgresql":
                    connection.execute(
                        sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
                        {"name": f"lazysession:{self.table.name}"},
                    )
                self.table.create(connection, checkfirst=True)
        except DBAPIError:
            if not sa.inspect(connection).has_table(self.table.name):
                raise

    @asynccontextmanager
    async def _write_turn(self) -> AsyncIterator[None]:
        if not self._serialize_writes:
            yield
            return
        if self._async_write_lock is None:
            self._async_write_lock = anyio.Lock()
        async with self._async_write_lock:
            yield

    @contextmanager
    def _sync_write_turn(self) -> Iterator[None]:
        if not self._serialize_writes:
            yield
            return
        with self._sync_write_lock:
            yield

    async def _ready_async(self) -> AsyncEngine:
        engine = self.check_async()
        if self._async_ready or not self._create_table:
            return engine
        if self._async_ready_lock is None:
            self._async_ready_lock = anyio.Lock()
        async with self._async_ready_lock:
            for attempt in range(_CREATE_ATTEMPTS):
                if self._async_ready:
                    break
                try:
                    async with self._isolated(engine, autocommit=False).connect() as connection:
                        await connection.run_sync(self._create)
                        await connection.commit()
                    self._async_ready = True
                except OperationalError:
                    if attempt + 1 == _CREATE_ATTEMPTS:
                        raise
                    await anyio.sleep(_create_backoff(attempt))
        return engine

    async def _single_async(self) -> AsyncEngine:
        """For one-statement work (load, save, delete, count): autocommit, so each is one
        round trip with no BEGIN/COMMIT around it, and still atomic."""
        return self._isolated(await self._ready_async(), autocommit=True)

    def _single_sync(self) -> Engine:
        return self._isolated(self._ready_sync(), autocommit=True)

    async def _transactional_async(self) -> AsyncEngine:
        """For work that needs a transaction (a merge under a row lock, a sweep batch)."""
        return self._isolated(await self._ready_async(), autocommit=False)

    def _transactional_sync(self) -> Engine:
        return self._isolated(self._ready_sync(), autocommit=False)

    @overload
    def _isolated(self, engine: AsyncEngine, *, autocommit: bool) -> AsyncEngine: ...
    @overload
    def _isolated(self, engine: Engine, *, autocommit: bool) -> Engine: ...
    def _isolated(self, engine: AsyncEngine | Engine, *, autocommit: bool) -> AsyncEngine | Engine:
        """``engine`` for autocommitted statements or for transactions, sharing its pool:
        the engine itself when it already runs that way, so no checkout switches levels."""
        if autocommit == self._autocommit:
            return engine
        key = (id(engine), autocommit)
        view = self._views.get(key)
        if view is None:
            level = "AUTOCOMMIT" if autocommit else self._sql.transaction_isolation
            view = self._views[key] = engine.execution_options(isolation_level=level)
        return view

    def _ready_sync(self) -> Engine:
        engine = self.check_sync()
        if self._sync_ready or not self._create_table:
            return engine
        with self._sync_ready_lock:
            for attempt in range(_CREATE_ATTEMPTS):
                if self._sync_ready:
                    break
                try:
                    with self._isolated(engine, autocommit=False).connect() as connection:
                        self._create(connection)
                        connection.commit()
                    self._sync_ready = True
                except OperationalError:
                    if attempt + 1 == _CREATE_ATTEMPTS:
                        raise
                    time.sleep(_create_backoff(attempt))
        return engine

    # -- async side ------------------------------------------------------------------------

    async def read(self, session_id: str) -> Record | None:
        op = self._ops.read(session_id, self._clock())
        record: Record | None = await self._op_async("loading a session", op)
        return record

    async def touch(self, session_id: str, *, expires_at: datetime) -> bool:
        op = self._ops.touch(session_id, self._clock(), expires_at)
        touched: bool = await self._op_async("touching a session", op)
        return touched

    async def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        op = self._ops.save(session_id, _json.dumps(data), self._clock(), expires_at)
        await self._op_async("saving a session", op)

    async def delete(self, session_id: str) -> None:
        await self._op_async("deleting a session", self._ops.delete(session_id, self._clock()))

    async def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        op = self._ops.update(session_id, changes, self._clock(), expires_at)
        merged: Merge = await self._op_async("saving a session", op)
        return merged

    async def rotate(
        self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime
    ) -> Merge:
        op = self._ops.rotate(old_id, new_id, changes, self._clock(), expires_at)
        merged: Merge = await self._op_async("rotating a session", op)
        return merged

    async def _op_async(self, action: str, op: Op[Any]) -> Any:
        """Carry out an operation of ``SessionOps``, run by run."""
        if self._threads:  # SQLite through the stdlib driver: the whole op in one thread call
            return await anyio.to_thread.run_sync(self._sync.op, action, op)
        try:
            run = next(op)
            while True:
                try:
                    with _store_errors(action):
                        result = await self._run_async(run)
                except StoreError as error:
                    run = op.throw(error)  # the operation may know what a failed run means
                else:
                    run = op.send(result)
        except StopIteration as done:
            return done.value

    async def _run_async(self, run: Run) -> Any:
        if not run.locked:
            engine = await self._single_async()
            if not run.writes:
                async with engine.connect() as conn:
                    return await _send_async(conn, run.plan)
            async with self._write_turn(), engine.connect() as conn:
                return await _send_async(conn, run.plan)
        if self._sql.locks_by_begin_immediate:
            engine = await self._single_async()
            async with self._write_turn(), engine.connect() as conn:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    result = await _send_async(conn, run.plan)
                except BaseException:
                    await conn.exec_driver_sql("ROLLBACK")
                    raise
                await conn.exec_driver_sql("COMMIT")
                return result
        transactional = await self._transactional_async()
        async with transactional.begin() as conn:
            return await _send_async(conn, run.plan)

    async def count(self) -> int:
        if self._threads:
            return await anyio.to_thread.run_sync(self._sync.count)
        with _store_errors("counting sessions"):
            engine = await self._single_async()
            async with engine.connect() as conn:
                return int((await conn.execute(self._sql.count)).scalar_one())

    async def count_expired(self) -> int:
        """Expired sessions not yet swept: the backlog a sweep would delete now."""
        if self._threads:
            return await anyio.to_thread.run_sync(self._sync.count_expired)
        with _store_errors("counting expired sessions"):
            engine = await self._single_async()
            async with engine.connect() as conn:
                result = await conn.execute(self._sql.count_expired, {"now": self._clock()})
                return int(result.scalar_one())

    async def oldest_created(self) -> datetime | None:
        """When the oldest live session began (None without any)."""
        with _store_errors("reading statistics"):
            engine = await self._single_async()
            async with engine.connect() as conn:
                found = (await conn.execute(self._sql.oldest, {"now": self._clock()})).scalar()
        return _as_utc(found)

    async def table_bytes(self) -> int | None:
        """Bytes the table and its indexes take, where the database can tell."""
        query = self._sql.size_query
        if query is None:
            return None
        with _store_errors("reading statistics"):
            engine = await self._single_async()
            async with engine.connect() as conn:
                size = (await conn.execute(query)).scalar()
        return None if size is None else int(size)

    async def sweep(
        self, *, on_batch: Callable[[int], None] | None = None, full_speed: bool = False
    ) -> int:
        """Delete every expired session, batch by batch; ``on_batch`` hears the running
        total after each batch (for progress reports). ``full_speed`` skips the rests
        between batches (an operator's one-off purge)."""
        now, pacer = self._clock(), self._pacer()
        total, after = 0, None
        while True:
            size, started = pacer.size, time.perf_counter()
            if self._threads:  # a batch per worker-thread call: cancellable between batches
                deleted, after = await anyio.to_thread.run_sync(
                    self._sync.sweep_batch, now, after, size
                )
            else:
                deleted, after = await self._sweep_batch_async(now, after, size)
            took = time.perf_counter() - started
            pacer.record(deleted, took)
            total += deleted
            if on_batch is not None:
                on_batch(total)
            if deleted < size:
                return total
            await anyio.sleep(0.0 if full_speed else pacer.rest(took))

    async def _sweep_batch_async(
        self, now: datetime, after: datetime | None, size: int
    ) -> tuple[int, datetime | None]:
        with _store_errors("sweeping expired sessions"):
            engine = await self._transactional_async()
            async with engine.connect() as conn:
                conn = await conn.execution_options(**self._sql.sweep_options)
                for statement in self._sql.before_batch:
                    await conn.exec_driver_sql(statement)
                    await conn.commit()
                async with self._write_turn(), conn.begin():
                    result = await conn.execute(self._sql.sweep_batch(now, after, size))
                    deleted, after = self._sql.read_batch(result, after)
                for statement in self._sql.after_batch:
                    await conn.exec_driver_sql(statement)
                    await conn.commit()
        return deleted, after

    def _pacer(self) -> SweepPacer:
        budget = SQLITE_BATCH_SECONDS if self.dialect_name == "sqlite" else None
        return SweepPacer(self.batch_size, budget)

    async def aclose(self) -> None:
        if self._owns_engines and self._async_engine is not None:
            await self._async_engine.dispose()
        if self._owns_engines and self._sync_engine is not None:
            self._sync_engine.dispose()

    @property
    def sync(self) -> SyncStore:
        return self._sync


class _SyncSQLAlchemyStore(SyncStore):
    """The blocking twin: the same statements, executed without ``await``."""

    def __init__(self, store: SQLAlchemyStore) -> None:
        self._store = store

    def read(self, session_id: str) -> Record | None:
        store = self._store
        record: Record | None = self.op(
            "loading a session", store._ops.read(session_id, store._clock())
        )
        return record

    def touch(self, session_id: str, *, expires_at: datetime) -> bool:
        store = self._store
        touched: bool = self.op(
            "touching a session", store._ops.touch(session_id, store._clock(), expires_at)
        )
        return touched

    def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        store = self._store
        op = store._ops.save(session_id, _json.dumps(data), store._clock(), expires_at)
        self.op("saving a session", op)

    def delete(self, session_id: str) -> None:
        self.op("deleting a session", self._store._ops.delete(session_id, self._store._clock()))

    def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        store = self._store
        op = store._ops.update(session_id, changes, store._clock(), expires_at)
        merged: Merge = self.op("saving a session", op)
        return merged

    def rotate(self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        store = self._store
        op = store._ops.rotate(old_id, new_id, changes, store._clock(), expires_at)
        merged: Merge = self.op("rotating a session", op)
        return merged

    def op(self, action: str, op: Op[Any]) -> Any:
        """Carry out an operation of ``SessionOps``, run by run (the blocking executor)."""
        try:
            run = next(op)
            while True:
                try:
                    with _store_errors(action):
                        result = self._run(run)
                except StoreError as error:
                    run = op.throw(error)
                else:
                    run = op.send(result)
        except StopIteration as done:
            return done.value

    def _run(self, run: Run) -> Any:
        store = self._store
        if not run.locked:
            if not run.writes:
                with store._single_sync().connect() as conn:
                    return _send(conn, run.plan)
            with store._sync_write_turn(), store._single_sync().connect() as conn:
                return _send(conn, run.plan)
        if store._sql.locks_by_begin_immediate:
            with store._sync_write_turn(), store._single_sync().connect() as conn:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    result = _send(conn, run.plan)
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
                return result
        with store._transactional_sync().begin() as conn:
            return _send(conn, run.plan)

    def count(self) -> int:
        with _store_errors("counting sessions"), self._store._single_sync().connect() as conn:
            return int(conn.execute(self._store._sql.count).scalar_one())

    def count_expired(self) -> int:
        with (
            _store_errors("counting expired sessions"),
            self._store._single_sync().connect() as conn,
        ):
            result = conn.execute(self._store._sql.count_expired, {"now": self._store._clock()})
            return int(result.scalar_one())

    def sweep(self) -> int:
        now, pacer = self._store._clock(), self._store._pacer()
        total, after = 0, None
        while True:
            size, started = pacer.size, time.perf_counter()
            deleted, after = self.sweep_batch(now, after, size)
            took = time.perf_counter() - started
            pacer.record(deleted, took)
            total += deleted
            if deleted < size:
                return total
            time.sleep(pacer.rest(took))

    def sweep_batch(
        self, now: datetime, after: datetime | None, size: int
    ) -> tuple[int, datetime | None]:
        """One batch of the sweep, in its own short transaction; returns the rows deleted
        and where the next batch resumes."""
        store = self._store
        with (
            _store_errors("sweeping expired sessions"),
            store._transactional_sync().connect() as conn,
        ):
            conn = conn.execution_options(**store._sql.sweep_options)
            for statement in store._sql.before_batch:
                conn.exec_driver_sql(statement)
                conn.commit()
            with store._sync_write_turn(), conn.begin():
                result = conn.execute(store._sql.sweep_batch(now, after, size))
                deleted, after = store._sql.read_batch(result, after)
            for statement in store._sql.after_batch:
                conn.exec_driver_sql(statement)
                conn.commit()
        return deleted, after

    def close(self) -> None:
        if self._store._owns_engines and self._store._sync_engine is not None:
            self._store._sync_engine.dispose()
