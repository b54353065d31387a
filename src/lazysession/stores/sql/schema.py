"""The sessions table: its columns, its timestamps, its DDL.

Rules:
- Timestamps are aware UTC datetimes on every dialect; each dialect says how it stores
  them (``SQLDialect.datetime_type``, ``SQLDialect.keeps_time_zones``), and they are always
  handed back aware.
- The table is one per store, named by the caller (letters, digits and ``_`` only, since
  it is written into a few raw statements).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from ..._errors import ConfigurationError

DEFAULT_TABLE = "lazysession_sessions"
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


def ddl(table: sa.Table, dialect: Dialect) -> str:
    """The ``CREATE TABLE`` and ``CREATE INDEX`` statements of ``table``."""
    statements = [CreateTable(table)] + [CreateIndex(i) for i in table.indexes]
    return ";\n".join(str(s.compile(dialect=dialect)).strip() for s in statements) + ";\n"
