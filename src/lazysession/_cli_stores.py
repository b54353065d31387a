"""How the ``lazysession`` commands open a store: to look at it, never creating anything.

Rules:
- A SQL store is opened with ``create_table=False``; a SQLite file that is not there, an
  in-memory database, or a store that keeps its sessions inside the app (the cookie,
  memory) is a :class:`Failure`, as is a driver the command cannot read through.
- A sync URL is read through its driver family's async twin (``sqlite://`` through the
  store's own worker-thread path, ``mysql+pymysql://`` through ``mysql+aiomysql``, which
  is built on PyMySQL): the same database, with no other driver to install.
- ``--table`` goes with a SQL store and ``--prefix`` with a Redis one; the other is a
  Failure. A password in a URL is never printed.
- What a store can report is asked of the store (:class:`HasTable`,
  :class:`ReportsBacklog`, its capabilities), never read off its class name.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ._store_urls import _redacted, check_store_url, store_from_url
from .stores import CookieStore, Store

_SQL_DRIVERS = {
    # driver as written -> the one the command reads the database through
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "mysql+pymysql": "mysql+aiomysql",
    "mysql+aiomysql": "mysql+aiomysql",
    "mysql+asyncmy": "mysql+asyncmy",
    "mariadb+pymysql": "mariadb+aiomysql",
    "mariadb+aiomysql": "mariadb+aiomysql",
    "mariadb+asyncmy": "mariadb+asyncmy",
}
SQL_FAMILIES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb")
_REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster")


class Failure(Exception):
    """A failure to report in one line (exit status 1)."""


@runtime_checkable
class HasTable(Protocol):
    """A store that keeps its sessions in a SQL table."""

    table: Any

    def ddl(self) -> str:
        """The ``CREATE`` statements of the table and its indexes."""
        ...

    async def has_table(self) -> bool:
        """Whether the table is there."""
        ...


@runtime_checkable
class ReportsBacklog(Protocol):
    """A store whose expired sessions wait for a sweep, and that can say how many."""

    async def count_expired(self) -> int:
        """Expired sessions not yet swept."""
        ...

    async def oldest_created(self) -> datetime | None:
        """When the oldest live session began."""
        ...

    async def table_bytes(self) -> int | None:
        """Bytes the sessions take on disk, where the database can tell."""
        ...

    async def sweep(
        self, *, on_batch: Callable[[int], None] | None = None, full_speed: bool = False
    ) -> int:
        """Delete every expired session, reporting the running total after each batch."""
        ...


def _sql_url(url: str) -> str:
    """The URL to read a SQL store through; a Failure for drivers the command cannot use
    and for a SQLite file that is not there."""
    driver = url.split("://", 1)[0].lower()
    if driver not in _SQL_DRIVERS:
        family = driver.split("+")[0]
        family = "postgresql" if family == "postgres" else family
        choices = [name for name in _SQL_DRIVERS if name.split("+")[0] == family] or list(
            _SQL_DRIVERS
        )
        raise Failure(
            f"{_redacted(url)}: the {driver}:// driver is not one lazysession reads; "
            f"use {', '.join(name + '://' for name in choices)}"
        )
    if driver.startswith("sqlite"):
        database = url.split("://", 1)[1][1:].split("?", 1)[0]
        if not database or database == ":memory:" or "mode=memory" in url:
            raise Failure(f"{url}: an in-memory database lives inside the app: nothing to inspect")
        path = Path(database)
        if not path.is_file():
            raise Failure(
                f"no database file at {path.resolve()} (check the path; the app creates it "
                "on first use)"
            )
    return _SQL_DRIVERS[driver] + url[len(driver) :]


def open_store(url: str, *, table: str | None, prefix: str | None, **options: Any) -> Store:
    """The store ``url`` names, opened to be looked at: a SQL store never creates its
    table. A Failure (one line) for anything that cannot be inspected."""
    scheme = check_store_url(url).split("://", 1)[0].lower()
    is_sql = scheme.split("+")[0] in SQL_FAMILIES
    if table is not None and not is_sql:
        raise Failure("--table names a SQL table; a Redis store takes --prefix")
    if prefix is not None and scheme not in _REDIS_SCHEMES:
        raise Failure("--prefix is for a Redis store; a SQL store takes --table")
    if is_sql:
        url = _sql_url(url)
        options["create_table"] = False
        if table is not None:
            options["table_name"] = table
    elif prefix is not None:
        options["prefix"] = prefix
    elif scheme in ("cookie", "memory"):
        options = {}
    store = store_from_url(url, **options)
    if isinstance(store, CookieStore) or store.in_process:
        raise Failure(
            f"{url}: this store keeps sessions inside the app ("
            f"{'in the cookie' if store.client_side else 'in its memory'}): nothing to inspect"
        )
    return store


async def require_table(store: HasTable, url: str) -> None:
    """A Failure naming the table when the database does not have it."""
    name = store.table.name
    if not await store.has_table():
        raise Failure(
            f"{_redacted(url)} has no table {name} (the app creates it on first use; "
            "--table names another)"
        )
