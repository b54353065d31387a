"""One object per SQL dialect: everything the store does differently on it.

Rules:
- A dialect is a class with the names SQLAlchemy gives it (``names``); adding one means
  adding a class here and listing it in ``_SUPPORTED``. Nothing elsewhere asks which
  dialect it runs on: it asks the dialect object.
- Each dialect holds its upsert, its insert-if-absent, its sweep batch and how to read
  its result, its size query, the isolation of the store's transactions, the statements
  around a sweep batch, how it stores timestamps, the pool and driver settings of the
  engines the store makes, the set-up of each new connection, and how it adds a column
  or an index to a table made by an earlier version (racing replicas doing the same).
- The sweep deletes in batches of at most ``batch_size`` rows, one short transaction
  each, in order of expiry; each dialect says how (see ``sweep_batch``). Replicas
  sweeping at once never deadlock, and their counts add up to exactly the rows that
  were expired.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.schema import CreateIndex

from ..._errors import ConfigurationError
from .._limits import SERVER_SHARE
from .connections import tune_sqlite_file, watch_server_connections
from .schema import UTCDateTime, inserted_values, replaced, typed

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# SQLite admits one writer at a time, and a batch's commit and checkpoint slow every other
# writer of the file: batches there are sized to take about this long, all included.
SQLITE_BATCH_SECONDS = 0.01

_POOL = {"pool_size": 20, "max_overflow": 10}
"""A pool big enough for a busy ASGI worker: past ``pool_size``, SQLAlchemy opens
overflow connections and closes them on return, which costs a connect per request."""


class SQLDialect:
    """What a dialect does by default; each supported one overrides what differs."""

    names: ClassVar[tuple[str, ...]] = ()
    async_driver: ClassVar[str] = "an async driver"
    """The drivers to suggest for ASGI, as printed in errors."""
    sync_driver: ClassVar[str] = "a sync driver"
    extra: ClassVar[str] = "sqlalchemy"
    """lazysession's extra that installs this dialect's drivers."""
    keeps_time_zones: ClassVar[bool] = False
    """Timestamps are stored aware (else as UTC-naive values)."""
    transaction_isolation: ClassVar[str] = "READ COMMITTED"
    """The isolation of the store's few transactions (its engines are autocommit)."""
    begins_immediate: ClassVar[bool] = False
    """No row locks: a locked run takes the database's write lock up front instead."""
    serializes_writes: ClassVar[bool] = False
    """This process's writers take turns (one writer at a time on the file)."""
    sweep_budget: ClassVar[float | None] = None
    """Seconds a sweep batch should take (None: fixed batches, with rests between)."""
    before_batch: ClassVar[Sequence[str]] = ()
    """Statements on the sweep's connection before a batch, each committed."""
    after_batch: ClassVar[Sequence[str]] = ()
    """Statements on the sweep's connection after a batch, each committed."""
    after_sweep: ClassVar[Sequence[str]] = ()
    """Statements after a batch, on any connection, outside the writers' turn."""
    sweep_options: ClassVar[dict[str, Any]] = {}
    """Execution options of the sweep's connection."""
    creates_index_if_absent: ClassVar[bool] = True
    """``CREATE INDEX IF NOT EXISTS`` is understood."""

    def check_url(self, url: URL) -> None:
        """Refuse, at configuration, a URL whose options the store cannot work with."""

    def datetime_type(self) -> sa.types.TypeEngine[Any]:
        return sa.DateTime(timezone=self.keeps_time_zones)

    def comparable(self, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
        """``column`` compared byte for byte."""
        return column

    def upsert(self, table: sa.Table) -> sa.Executable:
        """Insert a session, or replace the data and expiry of the row with its id
        (parameters ``sid``, ``data``, ``now``, ``expires``)."""
        raise ConfigurationError(f"SQLAlchemyStore does not support the {self.names} dialect")

    def insert_new(self, table: sa.Table) -> sa.Executable:
        """Insert a session unless its id is taken (see :meth:`took`)."""
        raise ConfigurationError(f"SQLAlchemyStore does not support the {self.names} dialect")

    def took(self, result: Any) -> bool:
        """Whether :meth:`insert_new` inserted. Its ``RETURNING`` rows are read to the
        end: on SQLite an autocommitted statement commits only once it has run to
        completion, and one left part-read holds its connection's transaction open."""
        return bool(result.all())

    def sweep_batch(self, table: str) -> sa.Executable:
        """Delete up to ``n`` rows expired by ``now``, oldest first (from ``after``,
        where the dialect resumes)."""
        raise NotImplementedError

    def read_batch(self, result: Any, after: datetime | None) -> tuple[int, datetime | None]:
        """Rows a sweep batch deleted, and where the next batch resumes."""
        return int(result.rowcount), None

    def swept_batch(self, table: str) -> sa.Executable | None:
        """A sweep batch, as :meth:`sweep_batch`, that also returns what it deleted (read
        by :meth:`read_swept`), for a sweep that reports the owned sessions it deletes.
        None: the dialect has no ``DELETE ... RETURNING`` (MySQL; MariaDB shares its
        class), and the batch's rows are read, locked, before the plain batch."""
        return None

    def read_swept(
        self, result: Any, after: datetime | None
    ) -> tuple[int, datetime | None, list[tuple[str, str]]]:
        """Rows a :meth:`swept_batch` deleted, where the next batch resumes, and the
        ``(key, owner)`` of the owned ones."""
        raise NotImplementedError

    def size_query(self, table: str) -> sa.TextClause | None:
        """The bytes the table and its indexes take (None: the database cannot say)."""
        return None

    def engine_defaults(self, url: URL, timeout: float) -> dict[str, Any]:
        """Pool and timeouts for engines the store makes itself: waiting for a pooled
        connection, and connecting, are bounded by ``timeout``.

        Autocommit: most of the store's work is one statement, and switching a pooled
        connection's isolation level on every checkout cost more than the query; the few
        transactions ask for theirs. Statement parameters are session data and hashed
        ids: SQLAlchemy keeps them out of its log and errors (``hide_parameters``)."""
        return {
            **_POOL,
            "pool_timeout": timeout,
            "connect_args": self.connect_args(url.get_driver_name(), timeout),
            "isolation_level": "AUTOCOMMIT",
            "hide_parameters": True,
        }

    def connect_args(self, driver: str, timeout: float) -> dict[str, Any]:
        return {}

    def on_connect(self, dbapi_connection: Any, timeout: float) -> None:
        """Set up a new connection of an engine the store made."""

    def before_create(self, connection: sa.Connection, table: sa.Table) -> None:
        """Inside the transaction that creates the table (or upgrades it), before it does."""

    def add_column(self, connection: sa.Connection, table: str, spec: str) -> None:
        """Add a nullable column (``spec``: its name and type) the table lacks; another
        replica's adding it first is no error."""
        self._ddl(connection, sa.text(f"ALTER TABLE {table} ADD COLUMN {spec}"))

    def add_index(self, connection: sa.Connection, index: sa.Index) -> None:
        """Create an index the table lacks; another replica's creating it first is no
        error."""
        self._ddl(connection, CreateIndex(index, if_not_exists=self.creates_index_if_absent))

    def added_already(self, error: sa.exc.DBAPIError) -> bool:
        """Whether a failed ``add_column`` or ``add_index`` means it is there already."""
        return False

    def _ddl(self, connection: sa.Connection, statement: sa.Executable) -> None:
        try:
            connection.execute(statement)
        except sa.exc.DBAPIError as error:
            if not self.added_already(error):
                raise

    def instrument(self, engine: sa.Engine, timeout: float, own_file: bool) -> None:
        """Bounds and health checks on the connections of an engine the store made
        (``own_file``: a database file the store opened itself, which it may tune)."""
        watch_server_connections(engine, self, timeout)


class _OnConflict(SQLDialect):
    """Dialects with ``INSERT ... ON CONFLICT`` (and ``RETURNING``)."""

    def _insert(self, table: sa.Table) -> Any:
        raise NotImplementedError

    def upsert(self, table: sa.Table) -> sa.Executable:
        insert = self._insert(table).values(inserted_values())
        changed = replaced(insert.excluded)
        return insert.on_conflict_do_update(index_elements=["session_id"], set_=changed)  # type: ignore[no-any-return]

    def insert_new(self, table: sa.Table) -> sa.Executable:
        insert = self._insert(table).values(inserted_values()).on_conflict_do_nothing()
        return insert.returning(table.c.session_id)  # type: ignore[no-any-return]


class PostgreSQL(_OnConflict):
    names = ("postgresql",)
    async_driver = "postgresql+asyncpg (or postgresql+psycopg)"
    sync_driver = "postgresql+psycopg"
    extra = "postgresql"
    keeps_time_zones = True

    def _insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table)

    def sweep_batch(self, table: str) -> sa.Executable:
        # Rows are claimed by physical address under FOR UPDATE SKIP LOCKED (stable until
        # the statement ends): replicas take disjoint rows and never wait, no primary-key
        # lookup is needed, and each batch resumes where the last ended, never rescanning
        # the dead index entries behind it.
        sql = f"""{self._deleting(table, "expires_at")}
            SELECT count(*), max(expires_at) FROM deleted"""  # noqa: S608
        return typed(sql, "now", "after").columns(
            sa.column("count", sa.Integer()), sa.column("last", UTCDateTime())
        )

    def read_batch(self, result: Any, after: datetime | None) -> tuple[int, datetime | None]:
        count, last = result.one()
        return int(count), last or after

    def swept_batch(self, table: str) -> sa.Executable:
        # The same batch; its owned rows come back in two arrays of one row (anonymous
        # rows add nothing to send). Rows claimed under SKIP LOCKED are each deleted,
        # and so reported, by one sweeper only.
        owned = "FILTER (WHERE owner IS NOT NULL)"
        sql = f"""{self._deleting(table, "expires_at, session_id, owner")}
            SELECT count(*), max(expires_at), array_agg(session_id) {owned},
                array_agg(owner) {owned}
            FROM deleted"""  # noqa: S608
        return typed(sql, "now", "after").columns(
            sa.column("count", sa.Integer()),
            sa.column("last", UTCDateTime()),
            sa.column("keys", postgresql.ARRAY(sa.String())),
            sa.column("owners", postgresql.ARRAY(sa.String())),
        )

    def read_swept(
        self, result: Any, after: datetime | None
    ) -> tuple[int, datetime | None, list[tuple[str, str]]]:
        count, last, keys, owners = result.one()
        return int(count), last or after, list(zip(keys or (), owners or (), strict=True))

    @staticmethod
    def _deleting(table: str, returning: str) -> str:
        return f"""
            WITH deleted AS (
                DELETE FROM {table} WHERE ctid = ANY(ARRAY(
                    SELECT ctid FROM {table}
                    WHERE expires_at <= :now AND expires_at >= :after
                    ORDER BY expires_at LIMIT :n FOR UPDATE SKIP LOCKED))
                RETURNING {returning})"""  # noqa: S608

    def size_query(self, table: str) -> sa.TextClause:
        return sa.text(f"SELECT pg_total_relation_size('{table}')")

    def connect_args(self, driver: str, timeout: float) -> dict[str, Any]:
        # Each statement is bounded by the server too (statement and lock timeouts); an
        # async call as a whole is bounded by its deadline, which makes asyncpg's command
        # timeout (one more timer per statement) redundant. libpq counts whole seconds.
        server_ms = str(max(1, int(timeout * SERVER_SHARE * 1000)))
        if driver == "asyncpg":
            limits = {"statement_timeout": server_ms, "lock_timeout": server_ms}
            return {"timeout": timeout, "server_settings": limits}
        options = f"-c statement_timeout={server_ms} -c lock_timeout={server_ms}"
        return {"connect_timeout": math.ceil(timeout), "options": options}

    def before_create(self, connection: sa.Connection, table: sa.Table) -> None:
        """Replicas take turns (an advisory lock): concurrent ``CREATE ... IF NOT
        EXISTS`` statements can still collide in the catalog."""
        lock = sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))")
        connection.execute(lock, {"name": f"lazysession:{table.name}"})

    def add_column(self, connection: sa.Connection, table: str, spec: str) -> None:
        connection.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {spec}"))


class MySQL(SQLDialect):
    """MariaDB and MySQL. READ COMMITTED: locking reads see the latest row either way,
    and no gap locks are taken, so a sweep never blocks the inserts of live sessions."""

    names = ("mysql", "mariadb")
    async_driver = "mysql+asyncmy (or mysql+aiomysql)"
    sync_driver = "mysql+pymysql"
    extra = "mysql"
    sweep_options: ClassVar[dict[str, Any]] = {"isolation_level": "READ COMMITTED"}
    creates_index_if_absent = False  # MariaDB would; MySQL 8 does not

    def added_already(self, error: sa.exc.DBAPIError) -> bool:
        """Duplicate column name (1060) or key name (1061): another replica won."""
        code = error.orig.args[0] if error.orig is not None and error.orig.args else None
        return code in (1060, 1061)

    def check_url(self, url: URL) -> None:
        """A connection in ``utf8`` (three bytes a character) cannot send a character
        outside the BMP: every write of a session holding an emoji would fail."""
        charset = str(url.query.get("charset", "utf8mb4")).lower()
        if charset != "utf8mb4":
            raise ConfigurationError(
                f"SQLAlchemyStore: charset={charset} cannot hold every character a session may "
                "(emoji and others outside the BMP); use charset=utf8mb4, or leave it out"
            )

    def datetime_type(self) -> sa.types.TypeEngine[Any]:
        return mysql.DATETIME(fsp=6)

    def comparable(self, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
        return column.collate("utf8mb4_bin")  # the default collation ignores case

    def upsert(self, table: sa.Table) -> sa.Executable:
        insert = mysql.insert(table).values(inserted_values())
        return insert.on_duplicate_key_update(replaced(insert.inserted))

    def insert_new(self, table: sa.Table) -> sa.Executable:
        return mysql.insert(table).values(inserted_values()).prefix_with("IGNORE")

    def took(self, result: Any) -> bool:
        return bool(result.rowcount)

    def sweep_batch(self, table: str) -> sa.TextClause:
        # One statement that walks the expiry index in order: concurrent sweepers take row
        # locks in the same order, so they queue briefly but never deadlock (claiming with
        # SKIP LOCKED and then deleting by key does deadlock).
        sql = f"DELETE FROM {table} WHERE expires_at <= :now ORDER BY expires_at LIMIT :n"  # noqa: S608
        return typed(sql, "now")

    def size_query(self, table: str) -> sa.TextClause:
        return sa.text(
            "SELECT data_length + index_length FROM information_schema.tables "  # noqa: S608
            f"WHERE table_schema = DATABASE() AND table_name = '{table}'"
        )

    def connect_args(self, driver: str, timeout: float) -> dict[str, Any]:
        if driver == "pymysql":  # a blocking driver: its socket waits are bounded too
            return {"connect_timeout": timeout, "read_timeout": timeout, "write_timeout": timeout}
        return {"connect_timeout": timeout}

    def on_connect(self, dbapi_connection: Any, timeout: float) -> None:
        """Lock waits (row locks, and metadata locks such as LOCK TABLES) end within the
        server's share of ``timeout`` (whole seconds, at least 1), and on MariaDB (the
        ``/*M!`` comment is run by MariaDB only) any statement does."""
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


class SQLite(_OnConflict):
    """One writer at a time: merges take the write lock up front (``BEGIN IMMEDIATE``),
    this process's writers take turns, and sweep batches are paced to a time budget."""

    names = ("sqlite",)
    async_driver = "sqlite+aiosqlite"
    sync_driver = "sqlite"
    transaction_isolation = "SERIALIZABLE"
    begins_immediate = True
    serializes_writes = True
    sweep_budget = SQLITE_BATCH_SECONDS
    # The batch's commit must not checkpoint the WAL while writers wait; a checkpoint
    # after each batch, outside the writers' turn, keeps the WAL small so that no save's
    # commit has to checkpoint the sweep's pages.
    before_batch = ("PRAGMA wal_autocheckpoint = 0",)
    after_batch = ("PRAGMA wal_autocheckpoint = 1000",)
    after_sweep = ("PRAGMA wal_checkpoint(PASSIVE)",)

    def _insert(self, table: sa.Table) -> Any:
        return sqlite.insert(table)

    def added_already(self, error: sa.exc.DBAPIError) -> bool:
        return "duplicate column name" in str(error.orig)

    def sweep_batch(self, table: str) -> sa.TextClause:
        # No claiming is needed with one writer, and SQLite removes index entries as it
        # deletes (no dead entries to skip, so no resume point); the expiry index holds
        # the rowid, so a batch is found without the table.
        return typed(self._deleting(table), "now")

    def swept_batch(self, table: str) -> sa.Executable | None:
        # RETURNING came with SQLite 3.35; before it, the batch's owners are read first,
        # under the write lock the batch holds (so by one sweeper only).
        if sqlite3.sqlite_version_info < (3, 35, 0):
            return None
        return typed(f"{self._deleting(table)} RETURNING session_id, owner", "now")

    def read_swept(
        self, result: Any, after: datetime | None
    ) -> tuple[int, datetime | None, list[tuple[str, str]]]:
        rows = result.all()
        return len(rows), None, [(key, owner) for key, owner in rows if owner is not None]

    @staticmethod
    def _deleting(table: str) -> str:
        return f"""
            DELETE FROM {table} WHERE rowid IN (
                SELECT rowid FROM {table} WHERE expires_at <= :now
                ORDER BY expires_at LIMIT :n)"""  # noqa: S608

    def size_query(self, table: str) -> sa.TextClause:
        return sa.text("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")

    def instrument(self, engine: sa.Engine, timeout: float, own_file: bool) -> None:
        if own_file:
            tune_sqlite_file(engine, timeout)

    def engine_defaults(self, url: URL, timeout: float) -> dict[str, Any]:
        if is_memory(url):  # one shared in-memory connection: no pool to size
            return {"isolation_level": "AUTOCOMMIT", "hide_parameters": True}
        options = super().engine_defaults(url, timeout)
        del options["connect_args"]
        return options


def is_memory(url: URL) -> bool:
    """A SQLite database in memory (it lives as long as its one connection)."""
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and (
        not database or database == ":memory:" or "mode=memory" in database
    )


_SUPPORTED: tuple[SQLDialect, ...] = (PostgreSQL(), MySQL(), SQLite())
_BY_NAME = {name: dialect for dialect in _SUPPORTED for name in dialect.names}
_OTHER = SQLDialect()


def dialect_named(name: str) -> SQLDialect:
    """The dialect object for SQLAlchemy's dialect ``name`` (a default one for a
    dialect the store does not support, for the table's types)."""
    return _BY_NAME.get(name, _OTHER)


def supported(name: str) -> SQLDialect:
    """The dialect object for ``name``, or a configuration error."""
    found = _BY_NAME.get(name)
    if found is None:
        raise ConfigurationError(f"SQLAlchemyStore does not support the {name} dialect")
    return found
