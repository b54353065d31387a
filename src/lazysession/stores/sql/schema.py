"""The sessions table: its columns, its timestamps, its DDL.

Rules:
- Timestamps are aware UTC datetimes on every dialect; each dialect says how it stores
  them (``SQLDialect.datetime_type``, ``SQLDialect.keeps_time_zones``), and they are always
  handed back aware.
- The table is one per store, named by the caller (letters, digits and ``_`` only, since
  it is written into a few raw statements).
- ``owner`` (indexed) is the app's id of the session's owner, NULL for an anonymous
  session and for a retired id; ``updated_at`` is when the session was last seen.
- A table made by an earlier version gains the columns and indexes it lacks when the
  store first uses it (``upgrade``): each is added only if missing, and replicas doing the
  same at once neither fail nor add it twice (each dialect says how: ``SQLDialect``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateColumn, CreateIndex, CreateTable

from ..._errors import ConfigurationError

if TYPE_CHECKING:
    from .dialects import SQLDialect

DEFAULT_TABLE = "lazysession_sessions"
OWNER_LENGTH = 255
"""Characters an owner's id may have in the table."""
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,50}$")


def check_table_name(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ConfigurationError(f"table_name={name!r}: use letters, digits and _")
    return name


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on every dialect: ``timestamptz`` on PostgreSQL, UTC-naive
    ``DATETIME(6)`` on MariaDB/MySQL and SQLite, always handed back aware."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        from .dialects import dialect_named

        return dialect.type_descriptor(dialect_named(dialect.name).datetime_type())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("session timestamps must be timezone-aware")
        from .dialects import dialect_named

        value = value.astimezone(timezone.utc)
        return value if dialect_named(dialect.name).keeps_time_zones else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value

    # SQLite keeps a timestamp as text in SQLAlchemy's format ("2026-12-01 16:00:00.123456",
    # always six digits of microseconds), which ``isoformat`` writes and ``fromisoformat``
    # reads in C: both run twice or more per statement, where SQLAlchemy's generic ones
    # (a %-format, a regular expression) cost more than SQLite itself on the event loop.

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        utc = timezone.utc

        def to_text(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("session timestamps must be timezone-aware")
            if value.utcoffset():
                value = value.astimezone(utc)
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")

        return to_text

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        utc = timezone.utc
        parse = datetime.fromisoformat

        def from_text(value: str | None) -> datetime | None:
            return None if value is None else parse(value).replace(tzinfo=utc)

        return from_text


class OwnerText(sa.TypeDecorator[str]):
    """An owner's id, compared exactly on every dialect. MySQL and MariaDB keep it as the
    hex of its UTF-8 in an ASCII column with a binary collation: their text collations
    fold case and accents and ignore trailing spaces, so ``'A'``, ``'a'``, ``'\u00e4'``
    and ``'a '`` would be one owner there (and not every MySQL driver binds bytes)."""

    impl = sa.String(OWNER_LENGTH)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in _HEX_OWNERS:
            column = mysql.VARCHAR(OWNER_LENGTH * 8, charset="ascii", collation="ascii_bin")
            return dialect.type_descriptor(column)
        return dialect.type_descriptor(sa.String(OWNER_LENGTH))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or dialect.name not in _HEX_OWNERS:
            return value
        return value.encode("utf-8").hex()

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or dialect.name not in _HEX_OWNERS:
            return value
        return bytes.fromhex(value).decode("utf-8")


_HEX_OWNERS = ("mysql", "mariadb")


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
        sa.Column("owner", OwnerText(), nullable=True),
        sa.Index(f"ix_{name}_expires_at", "expires_at"),
        sa.Index(f"ix_{name}_owner", "owner"),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )


def ddl(table: sa.Table, dialect: Dialect) -> str:
    """The ``CREATE TABLE`` and ``CREATE INDEX`` statements of ``table``."""
    statements = [CreateTable(table)] + [
        CreateIndex(i) for i in sorted(table.indexes, key=lambda i: str(i.name))
    ]
    return ";\n".join(str(s.compile(dialect=dialect)).strip() for s in statements) + ";\n"


def upgrade(connection: sa.Connection, table: sa.Table, dialect: SQLDialect) -> None:
    """Add the nullable columns and the indexes of ``table`` that the database's table
    lacks (one made by an earlier version), in one transaction of ``connection``, under
    the dialect's lock for creating the table where it has one."""
    if connection.in_transaction():
        connection.commit()
    with connection.begin():
        dialect.before_create(connection, table)
        inspector = sa.inspect(connection)
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in columns:
                spec = str(CreateColumn(column).compile(dialect=connection.dialect)).strip()
                dialect.add_column(connection, table.name, spec)
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                dialect.add_index(connection, index)


def inserted_values() -> dict[str, Any]:
    """The values of an inserted row (parameters ``sid``, ``data``, ``now``, ``expires``
    and ``owner``)."""
    return {
        "session_id": sa.bindparam("sid"),
        "data": sa.bindparam("data"),
        "created_at": sa.bindparam("now"),
        "updated_at": sa.bindparam("now"),
        "expires_at": sa.bindparam("expires"),
        "owner": sa.bindparam("owner"),
    }


def replaced(incoming: Any) -> dict[str, Any]:
    """What an upsert changes on a row that exists: all but its creation time."""
    return {
        "data": incoming.data,
        "updated_at": incoming.updated_at,
        "expires_at": incoming.expires_at,
        "owner": incoming.owner,
    }


def typed(sql: str, *timestamps: str) -> sa.TextClause:
    """``sql`` with its timestamp parameters typed, and ``n`` as a number."""
    params = [sa.bindparam(name, type_=UTCDateTime()) for name in timestamps]
    return sa.text(sql).bindparams(*params, sa.bindparam("n", type_=sa.Integer()))
