"""What every SQL dialect does unless it says otherwise: :class:`SQLDialect`, the one
object per dialect that the store asks, and :class:`OnConflict`, what dialects with
``INSERT ... ON CONFLICT`` share.

Rules:
- A dialect holds its upsert, its insert-if-absent, its sweep batch and how to read its
  result, its size query, the isolation of the store's transactions, the statements
  around a sweep batch, how it stores timestamps, the pool and driver settings of the
  engines the store makes, the set-up of each new connection, and how it adds a column
  or an index to a table made by an earlier version (racing replicas doing the same).
- A default here is what a dialect does when it has nothing better (or, for a dialect
  the store does not support, what the table's types need); the statements the store
  cannot do without (upsert, insert-if-absent, the sweep batch) have no default.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.schema import CreateIndex

from ...._errors import ConfigurationError
from ..connections import watch_server_connections
from ..schema import inserted_values, replaced

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

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
    """A checkpoint of the write-ahead log between sweep batches, on any connection,
    outside the writers' turn (run as the sweep's pace says, and once at its end)."""
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

    def read_checkpoint(self, result: Any) -> int | None:
        """The pages the write-ahead log held when :attr:`after_sweep` ran, read from
        its last statement's result (None: the dialect does not say)."""
        return None

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


class OnConflict(SQLDialect):
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
