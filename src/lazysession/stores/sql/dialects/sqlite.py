"""SQLite: one writer at a time, so writers take turns and sweep batches are paced.

Rules:
- Merges take the write lock up front (``BEGIN IMMEDIATE``, SERIALIZABLE), and this
  process's writers take turns on the file.
- A sweep batch deletes by rowid through the expiry index, with no claiming (one writer)
  and no resume point (SQLite removes index entries as it deletes); batches are sized to
  take about ``SQLITE_BATCH_SECONDS`` each, short enough to be served on the event loop
  as a save is (``inline``). A passive checkpoint runs between batches, outside the
  writers' turn, as often as keeps the WAL well below SQLite's auto-checkpoint, so that
  no commit (a batch's or a save's) checkpoints the sweep's pages (``pacing``).
- ``RETURNING`` (a reported batch's owned rows) is used where SQLite has it (3.35 on).
- A database in memory is one shared connection (no pool); a file the store opened
  itself is tuned by the store (``connections``).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL

from ..connections import tune_sqlite_file
from ..schema import typed
from .base import OnConflict

# SQLite admits one writer at a time, and every other writer of the file waits behind a
# batch: batches there are sized to take about this long (a save's own p99, about).
SQLITE_BATCH_SECONDS = 0.001


class SQLite(OnConflict):
    """One writer at a time: merges take the write lock up front (``BEGIN IMMEDIATE``),
    this process's writers take turns, and sweep batches are paced to a time budget."""

    names = ("sqlite",)
    async_driver = "sqlite+aiosqlite"
    sync_driver = "sqlite"
    transaction_isolation = "SERIALIZABLE"
    begins_immediate = True
    serializes_writes = True
    sweep_budget = SQLITE_BATCH_SECONDS
    # A passive checkpoint between batches, outside the writers' turn, as often as keeps
    # the WAL well below SQLite's auto-checkpoint (``pacing``): no commit, the batch's
    # or a save's, then has to checkpoint the sweep's pages.
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

    def read_checkpoint(self, result: Any) -> int | None:
        # (busy, pages in the log, pages checkpointed); -1s: not a WAL database
        row = None if result is None else result.first()
        return None if row is None or row[1] is None or row[1] < 0 else int(row[1])

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
