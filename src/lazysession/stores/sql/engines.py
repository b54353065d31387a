"""The engines of a SQL store: built at configuration, kept per event loop.

Rules:
- The driver is imported, and every engine a URL can serve is built, in the
  constructor: a missing driver is an error at configuration, and no blocking set-up
  (the import, SQLite's path resolution) waits for the first request in the event loop.
- Async engines the store makes keep their connections per event loop (``PerLoop``); the
  one built at configuration serves the first loop. An engine handed in is the
  application's, shared as is and never disposed of.
- A SQLite file named with ``sqlite+aiosqlite`` is served by the stdlib driver through
  the blocking engine (``threaded``): no aiosqlite engine is built for it.
- Engines the store makes are autocommit; transactions get a view of the same pool with
  the dialect's isolation (:meth:`Engines.isolated`), so no checkout switches levels.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any, overload
from urllib.parse import quote

import anyio
import sqlalchemy as sa
from sqlalchemy.engine import URL, Dialect, Engine
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..._errors import ConfigurationError
from .._limits import PerLoop
from .dialects import SQLDialect, dialect_named, is_memory

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

DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    DBAPIError,
    sa.exc.TimeoutError,
    sa.exc.DisconnectionError,
    OSError,
    asyncio.TimeoutError,
)
"""Errors of any driver that mean the store failed; each store adds its driver's own
base class (raised unwrapped where SQLAlchemy does not wrap, as when it sets a pooled
connection's isolation level)."""

# Attributes of SQLAlchemy's async adapters that hold the driver module underneath.
_DRIVER_MODULES = ("asyncpg", "psycopg", "asyncmy", "aiomysql", "pymysql", "aiosqlite")


def check_driver(url: URL) -> None:
    """Import ``url``'s driver now, at configuration, or say what to install."""
    try:
        url.get_dialect().import_dbapi()
    except ImportError as error:
        driver = url.get_driver_name()
        backend = url.get_backend_name()
        extra = _EXTRAS.get(driver)
        if extra is not None:
            advice = f"pip install 'lazysession[{extra}]'"
        else:
            dialect = dialect_named(backend)
            advice = (
                "lazysession's extras bring other drivers: "
                f"pip install 'lazysession[{dialect.extra}]'"
                f" and use {dialect.async_driver.split()[0]}:// (ASGI) or "
                f"{dialect.sync_driver}:// (WSGI)"
            )
        raise ConfigurationError(
            f"SQLAlchemyStore: the {backend}+{driver} driver is not installed ({error}); {advice}"
        ) from None


def check_charset(url: URL) -> None:
    """A MySQL/MariaDB connection in ``utf8`` (three bytes a character) cannot send a
    character outside the BMP: every write of a session holding an emoji would fail.
    Said at configuration instead."""
    if url.get_backend_name() != "mysql":
        return
    charset = str(url.query.get("charset", "utf8mb4")).lower()
    if charset != "utf8mb4":
        raise ConfigurationError(
            f"SQLAlchemyStore: charset={charset} cannot hold every character a session may "
            "(emoji and others outside the BMP); use charset=utf8mb4, or leave it out"
        )


def merged(defaults: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` over ``defaults``; ``connect_args`` (and asyncpg's ``server_settings``
    in it) are merged key by key, so naming an ``application_name`` keeps the timeouts."""
    result = {**defaults, **options}
    if "connect_args" in defaults and "connect_args" in options:
        args = {**defaults["connect_args"], **options["connect_args"]}
        if "server_settings" in defaults["connect_args"] and "server_settings" in args:
            args["server_settings"] = {
                **defaults["connect_args"]["server_settings"],
                **args["server_settings"],
            }
        result["connect_args"] = args
    return result


def dbapi_errors(dialect: Dialect) -> tuple[type[BaseException], ...]:
    """The driver's own error classes: its DBAPI ``Error``, and for an async driver
    adapted by SQLAlchemy, the errors of the driver module underneath."""
    dbapi = dialect.dbapi
    found: list[type[BaseException]] = []
    for holder in (dbapi, *(getattr(dbapi, name, None) for name in _DRIVER_MODULES)):
        error = getattr(holder, "Error", None)
        if isinstance(error, type) and issubclass(error, BaseException):
            found.append(error)
    return tuple(found)


def _resolved(url: URL) -> URL:
    """A SQLite file's URL with its path made absolute here, once, and handed to SQLite
    as a URI, so that SQLAlchemy resolves no path when it builds an engine (a store made
    inside an event loop blocks nothing: an absolute path needs no look-up at all)."""
    if url.query or not url.database or url.database.startswith("file:"):
        return url  # options of the caller's: SQLAlchemy reads them as it does
    path = url.database if os.path.isabs(url.database) else os.path.abspath(url.database)
    return url.set(database="file:" + quote(path), query={"uri": "true"})


class Engines:
    """The engines one store uses: async (per event loop) and blocking."""

    def __init__(
        self,
        source: URL | Engine | AsyncEngine,
        dialect: SQLDialect,
        timeout: float,
        options: Mapping[str, Any],
    ) -> None:
        self.dialect = dialect
        self.timeout = timeout
        self.options = dict(options)
        self.owned = isinstance(source, URL)
        self.url = source if isinstance(source, URL) else None
        self.async_engine: AsyncEngine | None = None
        self.sync_engine: Engine | None = None
        self.per_loop: PerLoop[AsyncEngine] | None = None
        self._base_in_use = False
        self._views: dict[tuple[int, bool], Any] = {}
        # Engines the store makes are autocommit unless engine_options choose another level.
        self.autocommit = self.owned and self.options.get("isolation_level", "AUTOCOMMIT") == (
            "AUTOCOMMIT"
        )
        self.own_file = (
            self.url is not None
            and not is_memory(self.url)
            and (self.url.get_backend_name() == "sqlite")
        )
        self.threaded = self.own_file and self.url is not None and self.url.get_dialect().is_async
        if isinstance(source, AsyncEngine):
            self.async_engine = source
        elif isinstance(source, Engine):
            self.sync_engine = source
        else:
            self._build(source)

    def _build(self, url: URL) -> None:
        """Every engine ``url`` can serve, now, or the reason it cannot serve a side, for
        ``check_async``/``check_sync`` to raise."""
        sync_url = _resolved(url) if self.own_file else url
        if self.threaded:
            sync_url = sync_url.set(drivername="sqlite")  # the stdlib driver: the same file
        else:
            try:
                self.async_engine = self._new_async_engine()
            except InvalidRequestError:
                pass  # a sync driver: check_async says which to use instead
            else:
                if not is_memory(url):  # a memory database is its one connection: shared
                    self.per_loop = PerLoop(self._engine_for_a_loop, self._close_loop_engine)
        if sync_url.get_dialect().is_async:
            return  # check_sync says which driver to use instead
        options = merged(self.dialect.engine_defaults(sync_url, self.timeout), self.options)
        self.sync_engine = sa.create_engine(sync_url, **options)
        self.dialect.instrument(self.sync_engine, self.timeout, self.own_file)

    def _new_async_engine(self) -> AsyncEngine:
        assert self.url is not None
        options = merged(self.dialect.engine_defaults(self.url, self.timeout), self.options)
        engine = create_async_engine(self.url, **options)
        self.dialect.instrument(engine.sync_engine, self.timeout, self.own_file)
        return engine

    def _engine_for_a_loop(self) -> AsyncEngine:
        """The engine for an event loop's first call: the one built at configuration
        unless another running loop holds it."""
        assert self.async_engine is not None
        if not self._base_in_use:
            self._base_in_use = True
            return self.async_engine
        return self._new_async_engine()

    async def _close_loop_engine(self, engine: AsyncEngine) -> None:
        with anyio.move_on_after(self.timeout):  # a database that hangs cannot hold us up
            await engine.dispose()
        if engine is self.async_engine:
            self._base_in_use = False
        else:
            for key in [key for key in self._views if key[0] == id(engine)]:
                del self._views[key]

    def here(self) -> AsyncEngine:
        """The async engine for the running event loop (the configured one outside)."""
        assert self.async_engine is not None
        if self.per_loop is None:
            return self.async_engine
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self.async_engine
        return self.per_loop.get()

    def check_async(self) -> AsyncEngine | None:
        """The async engine (the running event loop's, inside one); None when the
        blocking engine serves the async side too (a SQLite file); or a start-up error
        that names the driver to use instead."""
        if self.threaded:
            return None
        if self.async_engine is None:
            suggestion = self.dialect.async_driver
            if self.url is None:
                raise ConfigurationError(
                    "SQLAlchemyStore was given a sync Engine; the ASGI middleware needs an "
                    f"AsyncEngine or an async URL such as {suggestion}://..."
                )
            raise ConfigurationError(
                f"SQLAlchemyStore({self.url.render_as_string()!r}) uses a sync driver; the "
                f"ASGI middleware needs an async one: {suggestion}://..."
            )
        return self.here()

    def check_sync(self) -> Engine:
        """The sync engine, or a start-up error that names the driver to use instead."""
        if self.sync_engine is None:
            raise ConfigurationError(
                "this SQLAlchemyStore has an async driver; WSGI and command-line use need a "
                f"sync one, such as {self.dialect.sync_driver}://..."
            )
        return self.sync_engine

    def sa_dialect(self) -> Dialect:
        if self.url is not None:
            return self.url.get_dialect()()
        engine = self.async_engine or self.sync_engine
        assert engine is not None
        return engine.dialect

    @overload
    def isolated(self, engine: AsyncEngine, *, autocommit: bool) -> AsyncEngine: ...
    @overload
    def isolated(self, engine: Engine, *, autocommit: bool) -> Engine: ...
    def isolated(self, engine: AsyncEngine | Engine, *, autocommit: bool) -> AsyncEngine | Engine:
        """``engine`` for autocommitted statements or for transactions, sharing its pool:
        the engine itself when it already runs that way."""
        if autocommit == self.autocommit:
            return engine
        key = (id(engine), autocommit)
        view = self._views.get(key)
        if view is None:
            level = "AUTOCOMMIT" if autocommit else self.dialect.transaction_isolation
            view = self._views[key] = engine.execution_options(isolation_level=level)
        return view

    async def aclose(self) -> bool:
        """Close the running loop's connections and the blocking side's; True when an
        in-memory database went with them."""
        if not self.owned:
            return False
        gone = False
        if self.per_loop is not None:
            await self.per_loop.aclose()
        elif self.async_engine is not None:  # SQLite in memory: the database goes with it
            await self.async_engine.dispose()
            gone = True
        if self.sync_engine is not None:
            self.sync_engine.dispose()
        return gone

    def close_sync(self) -> None:
        if self.owned and self.sync_engine is not None:
            self.sync_engine.dispose()
