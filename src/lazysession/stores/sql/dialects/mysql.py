"""MariaDB and MySQL: ``ON DUPLICATE KEY`` writes, a sweep that walks the expiry index.

Rules:
- The store's transactions run at READ COMMITTED: locking reads see the latest row
  either way, and no gap locks are taken, so a sweep never blocks the inserts of live
  sessions.
- A sweep batch is one ``DELETE ... ORDER BY expires_at LIMIT``: concurrent sweepers
  take row locks in the same order, so they queue briefly but never deadlock. There is
  no ``DELETE ... RETURNING``: a reported batch reads (and locks) its rows first.
- Text is compared byte for byte (``utf8mb4_bin``; the default collation ignores case),
  and a connection must speak ``utf8mb4``.
- Lock waits (and, on MariaDB, any statement) end within the server's share of the
  store's timeout; a blocking driver's socket waits are bounded too.
- An upgrade that loses the race to another replica's (a duplicate column or key name)
  is no error.
"""

from __future__ import annotations

from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL

from ...._errors import ConfigurationError
from ..._limits import SERVER_SHARE
from ..schema import inserted_values, replaced, typed
from .base import SQLDialect


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
