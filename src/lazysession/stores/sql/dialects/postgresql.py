"""PostgreSQL: ``ON CONFLICT`` writes, a sweep that claims rows under ``SKIP LOCKED``.

Rules:
- Timestamps are stored aware (``timestamptz``).
- A sweep batch claims its rows by physical address (``ctid``) under ``FOR UPDATE SKIP
  LOCKED`` and resumes after the latest expiry it deleted: replicas sweeping at once
  take disjoint rows, never wait on each other, and never rescan the dead index entries
  behind them; a reported batch returns its owned rows from the same statement.
- Every statement is bounded by the server as well (statement and lock timeouts, the
  server's share of the store's timeout), whichever driver connects.
- Replicas creating or upgrading the table take turns under an advisory lock.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ..._limits import SERVER_SHARE
from ..schema import UTCDateTime, typed
from .base import OnConflict


class PostgreSQL(OnConflict):
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
