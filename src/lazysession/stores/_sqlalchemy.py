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
- Every call ends within ``timeout`` (a write already sent gets half that more): the
  executors wrap each operation in ``_errors`` (see ``_limits``), and the database
  bounds each statement where it can. Engines are built, and the driver imported, in
  the constructor; the async ones are kept per event loop. A pooled connection whose
  server closed it is replaced at checkout.
"""

from __future__ import annotations

import asyncio
import math
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
from ._base import Changes, Merge, Record, Store, StoreErrors, SyncStore
from ._limits import (
    SERVER_SHARE,
    Bounded,
    BoundedSync,
    PerLoop,
    Watchdog,
    check_timeout,
    current_call,
    looks_dead,
    remaining,
    tracked,
    tracked_sync,
)
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


DEFAULT_TIMEOUT = 5.0


def _engine_defaults(url: URL, timeout: float) -> dict[str, Any]:
    """Pool and timeouts for engines the store makes itself (``engine_options`` wins,
    key by key, also inside ``connect_args``: see :func:`_merged`).

    A pool big enough for a busy ASGI worker: past ``pool_size``, SQLAlchemy opens
    overflow connections and closes them on return, which costs a connect per request.
    Waiting for a pooled connection, and connecting, are bounded by ``timeout``; so is
    each statement, by the database (PostgreSQL's statement and lock timeouts, here;
    MariaDB's and MySQL's, set on each new connection by :func:`_limit_mysql`) and by the
    blocking driver where it can (pymysql's socket timeouts). An async call as a whole is
    bounded by its deadline (``_errors``), which makes asyncpg's command timeout (one
    more timer per statement) redundant.
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
            "pool_timeout": timeout,
            "isolation_level": "AUTOCOMMIT",
            "hide_parameters": True,
        }
    server_ms = max(1, int(timeout * SERVER_SHARE * 1000))
    postgresql_limits = f"-c statement_timeout={server_ms} -c lock_timeout={server_ms}"
    by_driver: dict[str, dict[str, Any]] = {
        "asyncpg": {
            "timeout": timeout,
            "server_settings": {
                "statement_timeout": str(server_ms),
                "lock_timeout": str(server_ms),
            },
        },
        # libpq counts whole seconds (and at least 2): connecting may take that long
        "psycopg": {"connect_timeout": math.ceil(timeout), "options": postgresql_limits},
        "psycopg2": {"connect_timeout": math.ceil(timeout), "options": postgresql_limits},
        "asyncmy": {"connect_timeout": timeout},
        "aiomysql": {"connect_timeout": timeout},
        "pymysql": {"connect_timeout": timeout, "read_timeout": timeout, "write_timeout": timeout},
    }
    connect_args = by_driver.get(url.get_driver_name(), {})
    return {
        "pool_size": 20,
        "max_overflow": 10,
        "pool_timeout": timeout,
        "connect_args": connect_args,
        "isolation_level": "AUTOCOMMIT",
        "hide_parameters": True,
    }


def _merged(defaults: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` over ``defaults``; ``connect_args`` (and asyncpg's ``server_settings``
    in it) are merged key by key, so naming an ``application_name`` keeps the timeouts."""
    merged = {**defaults, **options}
    if "connect_args" in defaults and "connect_args" in options:
        args = {**defaults["connect_args"], **options["connect_args"]}
        if "server_settings" in defaults["connect_args"] and "server_settings" in args:
            args["server_settings"] = {
                **defaults["connect_args"]["server_settings"],
                **args["server_settings"],
            }
        merged["connect_args"] = args
    return merged


def _limit_mysql(dbapi_connection: Any, timeout: float) -> None:
    """A new MariaDB/MySQL connection's limits: lock waits (row locks, and metadata
    locks such as LOCK TABLES) end within the server's share of ``timeout`` (whole
    seconds, at least 1), and on MariaDB (the ``/*M!`` comment is run by MariaDB only)
    any statement does."""
    seconds = max(1, int(timeout * SERVER_SHARE))
    statement = (
        f"SET SESSION innodb_lock_wait_timeout = {seconds}, lock_wait_timeout = {seconds}"
        f" /*M!100100 , max_statement_time = {timeout * SERVER_SHARE:.3f} */"
    )
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


# The DBAPI module each driver imports, and the extra of lazysession's that installs it.
_EXTRAS = {
    "asyncpg": "postgresql",
    "psycopg": "postgresql",
    "asyncmy": "mysql",
    "aiomysql": "mysql",
    "pymysql": "mysql",
    "aiosqlite": "sqlalchemy",
    "pysqlite": "sqlalchemy",
}


def _check_driver(url: URL) -> None:
    """Import ``url``'s driver now, at configuration, or say what to install."""
    dialect = url.get_dialect()
    try:
        dialect.import_dbapi()
    except ImportError as error:
        driver = url.get_driver_name()
        backend = url.get_backend_name()
        extra = _EXTRAS.get(driver)
        if extra is not None:
            advice = f"pip install 'lazysession[{extra}]'"
        else:
            families = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}
            family = families.get(backend, "sqlalchemy")
            async_driver = _ASYNC_DRIVERS.get(backend, "an async driver").split()[0]
            advice = (
                f"lazysession's extras bring other drivers: pip install 'lazysession[{family}]'"
                f" and use {async_driver}:// (ASGI) or "
                f"{_SYNC_DRIVERS.get(backend, 'a sync driver')}:// (WSGI)"
            )
        raise ConfigurationError(
            f"SQLAlchemyStore: the {backend}+{driver} driver is not installed ({error}); {advice}"
        ) from None


def _as_utc(value: datetime | None) -> datetime | None:
    """A timestamp from a raw-SQL result, aware whatever the driver handed back."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


_DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    DBAPIError,
    sa.exc.TimeoutError,
    sa.exc.DisconnectionError,
    OSError,
    asyncio.TimeoutError,
)
"""Errors of any driver that mean the store failed; each store adds its driver's own
base class (raised unwrapped where SQLAlchemy does not wrap, as when it sets a pooled
connection's isolation level)."""


def _no_turn(timeout: float) -> StoreError:
    return StoreError(
        f"writing a session failed: other writers held SQLite's write lock past the "
        f"store's timeout ({timeout:g} s)"
    )


def _dbapi_errors(dialect: Dialect) -> tuple[type[BaseException], ...]:
    """The driver's own error classes: its DBAPI ``Error``, and for an async driver
    adapted by SQLAlchemy, the errors of the driver module underneath."""
    dbapi = dialect.dbapi
    found: list[type[BaseException]] = []
    for holder in (dbapi, *(getattr(dbapi, name, None) for name in _DRIVER_MODULES)):
        error = getattr(holder, "Error", None)
        if isinstance(error, type) and issubclass(error, BaseException):
            found.append(error)
    return tuple(found)


# Attributes of SQLAlchemy's async adapters that hold the driver module underneath.
_DRIVER_MODULES = ("asyncpg", "psycopg", "asyncmy", "aiomysql", "pymysql", "aiosqlite")


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
        clock: Clock = utc_now,
    ) -> None:
        if batch_size < 1:
            raise ConfigurationError("batch_size must be at least 1")
        if not _IDENTIFIER.match(table_name):
            raise ConfigurationError(f"table_name={table_name!r}: use letters, digits and _")
        self.timeout = check_timeout(timeout, "SQLAlchemyStore")
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
            _check_driver(self._url)
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
        self._base_in_use = False
        self._loop_engines: PerLoop[AsyncEngine] | None = None
        if self._url is not None:
            self._build_engines(self._url)
        engines = (self._async_engine, self._sync_engine)
        self._errors_caught = _DRIVER_ERRORS + tuple(
            error
            for engine in engines
            if engine is not None
            for error in _dbapi_errors(engine.dialect)
        )

    # -- engines ---------------------------------------------------------------------------

    def _build_engines(self, url: URL) -> None:
        """Every engine ``url`` can serve, now (the driver's import and SQLite's path
        resolution block: they belong here, not in the event loop), or the reason it
        cannot serve a side, for ``check_async``/``check_sync`` to raise."""
        try:
            self._async_engine = self._new_async_engine()
        except InvalidRequestError:
            pass  # a sync driver: check_async says which to use instead
        else:
            if not self._is_memory(url):  # a memory database is its one connection: shared
                self._loop_engines = PerLoop(self._engine_for_a_loop, self._close_loop_engine)
        sync_url = url
        if self._sqlite_file and url.get_dialect().is_async:
            sync_url = url.set(drivername="sqlite")  # the stdlib driver reaches the same file
        if sync_url.get_dialect().is_async:
            return  # check_sync says which driver to use instead
        self._sync_engine = sa.create_engine(
            sync_url, **_merged(_engine_defaults(sync_url, self.timeout), self._engine_options)
        )
        self._instrument(self._sync_engine)

    @staticmethod
    def _is_memory(url: URL) -> bool:
        database = url.database or ""
        return url.get_backend_name() == "sqlite" and (
            not database or database == ":memory:" or "mode=memory" in database
        )

    def _new_async_engine(self) -> AsyncEngine:
        assert self._url is not None
        options = _merged(_engine_defaults(self._url, self.timeout), self._engine_options)
        engine = create_async_engine(self._url, **options)
        self._instrument(engine.sync_engine)
        return engine

    def _engine_for_a_loop(self) -> AsyncEngine:
        """The engine for an event loop's first call: the one built at configuration
        unless another running loop holds it."""
        assert self._async_engine is not None
        if not self._base_in_use:
            self._base_in_use = True
            return self._async_engine
        return self._new_async_engine()

    async def _close_loop_engine(self, engine: AsyncEngine) -> None:
        with anyio.move_on_after(self.timeout):  # a database that hangs cannot hold us up
            await engine.dispose()
        if engine is self._async_engine:
            self._base_in_use = False
        else:
            for key in [key for key in self._views if key[0] == id(engine)]:
                del self._views[key]

    def _engine_here(self) -> AsyncEngine:
        """The async engine for the running event loop."""
        if self._loop_engines is not None:
            return self._loop_engines.get()
        return self.check_async()

    def check_async(self) -> AsyncEngine:
        """The async engine (the running event loop's, inside one), or a start-up error
        that names the driver to use instead."""
        if self._async_engine is None:
            if self._url is None:
                raise ConfigurationError(
                    "SQLAlchemyStore was given a sync Engine; the ASGI middleware needs an "
                    f"AsyncEngine or an async URL such as {self._suggest(_ASYNC_DRIVERS)}://..."
                )
            raise ConfigurationError(
                f"SQLAlchemyStore({self._url.render_as_string()!r}) uses a sync driver; the "
                f"ASGI middleware needs an async one: {self._suggest(_ASYNC_DRIVERS)}://..."
            )
        if self._loop_engines is not None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return self._async_engine
            return self._loop_engines.get()
        return self._async_engine

    def check_sync(self) -> Engine:
        """The sync engine, or a start-up error that names the driver to use instead."""
        if self._sync_engine is None:
            raise ConfigurationError(
                "this SQLAlchemyStore has an async driver; WSGI and command-line use need a "
                f"sync one, such as {self._suggest(_SYNC_DRIVERS)}://..."
            )
        return self._sync_engine

    def _suggest(self, table: Mapping[str, str]) -> str:
        return table.get(self.dialect_name, "an appropriate driver")

    @property
    def _sqlite_file(self) -> bool:
        """A SQLite database file the store opened itself (not in memory, not an engine
        of the application's): the store may tune it."""
        if self.dialect_name != "sqlite" or self._url is None:
            return False
        return not self._is_memory(self._url)

    def _instrument(self, engine: Engine) -> None:
        """Bounds and health checks on the connections of an engine the store made.

        - SQLite: each checkout sets the busy timeout to what the call has left (writers
          queued behind another process's lock each give up by their own deadline, not
          one busy timeout after another); WAL (switched on once, at table creation)
          commits without an fsync each.
        - MariaDB/MySQL: each new connection gets the lock and statement limits.
        - Servers: a pooled connection its server has closed (a restart, an outage) is
          replaced at checkout, found without a round trip (:func:`looks_dead`), so the
          first call after an outage succeeds.
        - Blocking drivers with no read timeout (psycopg): a :class:`Watchdog` cuts a
          connection whose call passed its deadline.
        """
        timeout = self.timeout
        if self._sqlite_file:

            @sa.event.listens_for(engine, "connect")
            def _pragmas(dbapi_connection: Any, record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
                cursor.execute("PRAGMA synchronous = NORMAL")
                cursor.close()
                record.info["lazysession.busy_ms"] = int(timeout * 1000)

            @sa.event.listens_for(engine, "checkout")
            def _busy_until_the_deadline(dbapi_connection: Any, record: Any, _: Any) -> None:
                left = int(remaining(timeout) * 1000)
                current = record.info.get("lazysession.busy_ms", -1)
                # only when the wait would outlast the deadline, or end well before it
                if current > left or current < left - timeout * 100:
                    cursor = dbapi_connection.cursor()
                    cursor.execute(f"PRAGMA busy_timeout = {max(left, 1)}")
                    cursor.close()
                    record.info["lazysession.busy_ms"] = max(left, 1)

            return
        if self.dialect_name == "sqlite":
            return
        mysql_family = self.dialect_name in ("mysql", "mariadb")

        @sa.event.listens_for(engine, "connect")
        def _new(dbapi_connection: Any, record: Any) -> None:
            if mysql_family:
                _limit_mysql(dbapi_connection, timeout)
            record.info["lazysession.fresh"] = True  # nothing to check at its first checkout

        @sa.event.listens_for(engine, "checkout")
        def _replace_if_closed(dbapi_connection: Any, record: Any, _: Any) -> None:
            if record.info.pop("lazysession.fresh", False):
                return
            driver_connection = getattr(dbapi_connection, "driver_connection", dbapi_connection)
            if looks_dead(driver_connection):
                raise sa.exc.DisconnectionError("the server closed this pooled connection")

        if engine.dialect.is_async or engine.driver not in ("psycopg", "psycopg2"):
            return
        watchdog = Watchdog.instance()

        @sa.event.listens_for(engine, "checkout")
        def _arm(dbapi_connection: Any, record: Any, _: Any) -> None:
            ticket = watchdog.arm(dbapi_connection, remaining(timeout), current_call())
            record.info["lazysession.ticket"] = ticket

        @sa.event.listens_for(engine, "checkin")
        def _disarm(dbapi_connection: Any, record: Any) -> None:
            ticket = record.info.pop("lazysession.ticket", None)
            if ticket is not None:
                watchdog.disarm(ticket)

        @sa.event.listens_for(engine, "invalidate")
        def _disarm_invalidated(dbapi_connection: Any, record: Any, _: Any) -> None:
            _disarm(dbapi_connection, record)

    def _errors(self, action: str) -> Bounded:
        """``with self._errors("loading a session"):`` around a call: it ends
        within the store's timeout, and its failures are
        :class:`~lazysession.StoreError`."""
        return Bounded(action, self._errors_caught, self.timeout)

    def _catch(self, action: str) -> StoreErrors:
        """``with self._catch(action):`` raises this store's driver errors (one step of a
        call) as :class:`~lazysession.StoreError`."""
        return StoreErrors(action, self._errors_caught)

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
        """This process's writers take turns (SQLite), each waiting no longer than its
        call has left."""
        if not self._serialize_writes:
            yield
            return
        if self._async_write_lock is None:
            self._async_write_lock = anyio.Lock()
        with anyio.move_on_after(remaining(self.timeout)) as waiting:
            await self._async_write_lock.acquire()
        if waiting.cancelled_caught:
            raise _no_turn(self.timeout)
        try:
            yield
        finally:
            self._async_write_lock.release()

    @contextmanager
    def _sync_write_turn(self) -> Iterator[None]:
        """The blocking twin, also waiting no longer than the call has left."""
        if not self._serialize_writes:
            yield
            return
        if not self._sync_write_lock.acquire(timeout=remaining(self.timeout)):
            raise _no_turn(self.timeout)
        try:
            yield
        finally:
            self._sync_write_lock.release()

    async def _ready_async(self) -> AsyncEngine:
        engine = self._engine_here()
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
        """Carry out an operation of ``SessionOps``, run by run, within the timeout."""
        if self._threads:  # SQLite through the stdlib driver: the whole op in one thread call
            return await anyio.to_thread.run_sync(self._sync.op, action, op)
        with self._errors(action):
            return await self._runs_async(action, op)

    async def _runs_async(self, action: str, op: Op[Any]) -> Any:
        try:
            run = next(op)
            while True:
                try:
                    with self._catch(action):
                        result = await tracked(run.writes, self._run_async(run))
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
        with self._errors("counting sessions"):
            engine = await self._single_async()
            async with engine.connect() as conn:
                return int((await conn.execute(self._sql.count)).scalar_one())

    async def count_expired(self) -> int:
        """Expired sessions not yet swept: the backlog a sweep would delete now."""
        if self._threads:
            return await anyio.to_thread.run_sync(self._sync.count_expired)
        with self._errors("counting expired sessions"):
            engine = await self._single_async()
            async with engine.connect() as conn:
                result = await conn.execute(self._sql.count_expired, {"now": self._clock()})
                return int(result.scalar_one())

    async def oldest_created(self) -> datetime | None:
        """When the oldest live session began (None without any)."""
        with self._errors("reading statistics"):
            engine = await self._single_async()
            async with engine.connect() as conn:
                found = (await conn.execute(self._sql.oldest, {"now": self._clock()})).scalar()
        return _as_utc(found)

    async def table_bytes(self) -> int | None:
        """Bytes the table and its indexes take, where the database can tell."""
        query = self._sql.size_query
        if query is None:
            return None
        with self._errors("reading statistics"):
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
        with self._errors("sweeping expired sessions"):
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
        """Close the connections the store opened: the running event loop's, and the
        blocking side's. The store stays usable; its next call connects again."""
        if not self._owns_engines:
            return
        if self._loop_engines is not None:
            await self._loop_engines.aclose()
        elif self._async_engine is not None:  # SQLite in memory: the database goes with it
            await self._async_engine.dispose()
            self._async_ready = False
        if self._sync_engine is not None:
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
        """Carry out an operation of ``SessionOps``, run by run (the blocking executor),
        each wait bounded by what the call has left of the timeout."""
        with self._errors(action):
            return self._runs(action, op)

    def _runs(self, action: str, op: Op[Any]) -> Any:
        try:
            run = next(op)
            while True:
                try:
                    with self._store._catch(action):
                        result = tracked_sync(run.writes, self._run, run)
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
        with self._errors("counting sessions"), self._store._single_sync().connect() as conn:
            return int(conn.execute(self._store._sql.count).scalar_one())

    def count_expired(self) -> int:
        with (
            self._errors("counting expired sessions"),
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
            self._errors("sweeping expired sessions"),
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
        """Close the blocking side's connections (the store stays usable)."""
        if self._store._owns_engines and self._store._sync_engine is not None:
            self._store._sync_engine.dispose()

    def _errors(self, action: str) -> BoundedSync:
        """``with self._errors("loading a session"):`` around a call: its waits end by
        the call's deadline, and its failures are :class:`~lazysession.StoreError`."""
        return BoundedSync(action, self._store._errors_caught, self._store.timeout)
