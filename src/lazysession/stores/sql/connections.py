"""Bounds and health checks on the connections of engines the store made.

Rules:
- SQLite file: each checkout sets the busy timeout to what the call may wait (writers
  queued behind another process's lock each give up by their own deadline, not one busy
  timeout after another; a call served on the event loop waits at most ``INLINE_BUSY``
  and then goes on in a worker thread). WAL (switched on once, at table creation)
  commits without an fsync each (``synchronous = NORMAL``).
- Servers: each new connection gets the dialect's limits (``SQLDialect.on_connect``); a
  pooled connection its server has closed (a restart, an outage) is replaced at
  checkout, found without a round trip (:func:`~lazysession.stores._watchdog.looks_dead`),
  so the first call after an outage succeeds.
- Blocking drivers with no read timeout (psycopg): a :class:`Watchdog` cuts a connection
  whose call passed its deadline.
"""

from __future__ import annotations

import contextvars
import sqlite3
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .._limits import Watchdog, current_call, looks_dead, remaining

if TYPE_CHECKING:
    from .dialects import SQLDialect

INLINE_BUSY = 0.004
"""Seconds a SQLite call served on the event loop waits for another process's write
lock before it moves to a worker thread (where it waits up to its deadline)."""

on_the_loop: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "lazysession_sql_on_the_loop", default=False
)
"""Whether the running SQLite call is served on the event loop (its waits must be short)."""

_BUSY_MS = "lazysession.busy_ms"


def tune_sqlite_file(engine: Engine, timeout: float) -> None:
    """A SQLite file the store opened: pragmas on connect, the busy wait at checkout."""
    inline_ms = max(1, int(INLINE_BUSY * 1000))

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()
        record.info[_BUSY_MS] = int(timeout * 1000)

    @sa.event.listens_for(engine, "checkout")
    def _busy_until_the_deadline(dbapi_connection: Any, record: Any, _: Any) -> None:
        current = record.info.get(_BUSY_MS, -1)
        if on_the_loop.get():
            wanted = inline_ms
            if current == wanted:
                return
        else:
            left = int(remaining(timeout) * 1000)
            # only when the wait would outlast the deadline, or end well before it
            if current <= left and current >= left - timeout * 100:
                return
            wanted = max(left, 1)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {wanted}")
        cursor.close()
        record.info[_BUSY_MS] = wanted


def watch_server_connections(engine: Engine, dialect: SQLDialect, timeout: float) -> None:
    """Limits on each new connection; dead pooled connections replaced at checkout; and
    for psycopg, the watchdog armed for each checkout."""

    @sa.event.listens_for(engine, "connect")
    def _new(dbapi_connection: Any, record: Any) -> None:
        dialect.on_connect(dbapi_connection, timeout)
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


def is_busy(error: BaseException) -> bool:
    """SQLite refused for a lock another connection holds (``SQLITE_BUSY``, and its
    extended codes: a WAL snapshot that another writer moved past)."""
    driver = getattr(error, "orig", error)
    if not isinstance(driver, sqlite3.OperationalError):
        return False
    name = getattr(driver, "sqlite_errorname", None)  # Python 3.11+
    if isinstance(name, str):
        return name.startswith("SQLITE_BUSY")
    return "database is locked" in str(driver)
