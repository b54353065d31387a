"""Picking a store from a URL, and telling what to install when a store's optional
module is missing.

Rules:
- ``check_store_url`` tells a URL that names no store (or a malformed Redis one) without
  importing or connecting anything; ``store_from_url`` builds the store, importing the
  store's optional dependency only then.
- A password in a URL never appears in a message (``_redacted``).
- A missing optional module is named with the extra that brings it
  (``pip install 'lazysession[EXTRA]'``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from ._errors import ConfigurationError
from .stores import CookieStore, MemoryStore, Store

_SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb")
_REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster")

_EXTRAS = {
    "sqlalchemy": "sqlalchemy",
    "aiosqlite": "sqlalchemy",
    "greenlet": "sqlalchemy",
    "asyncpg": "postgresql",
    "psycopg": "postgresql",
    "psycopg2": "postgresql",
    "asyncmy": "mysql",
    "aiomysql": "mysql",
    "pymysql": "mysql",
    "MySQLdb": "mysql",
    "redis": "redis",
    "prometheus_client": "prometheus",
    "opentelemetry": "opentelemetry",
}


def extra_for(error: ImportError) -> str | None:
    """The extra (``pip install 'lazysession[EXTRA]'``) that brings the module an
    ``ImportError`` is about, or None when it is not one of lazysession's."""
    name = (error.name or "").split(".")[0]
    return _EXTRAS.get(name)


def missing_module(error: ImportError, needed_by: str) -> str:
    """One line for a missing optional module: what needs it and what to install."""
    name = (error.name or str(error)).split(".")[0]
    extra = extra_for(error)
    if name == "MySQLdb":
        return (
            f"{needed_by} needs the mysqlclient driver, which is not installed: use "
            "mysql+asyncmy:// (ASGI) or mysql+pymysql:// (WSGI) after "
            "pip install 'lazysession[mysql]'"
        )
    if name == "psycopg2":
        return (
            f"{needed_by} needs psycopg2, which is not installed: use postgresql+asyncpg:// "
            "(ASGI) or postgresql+psycopg:// (both) after pip install 'lazysession[postgresql]'"
        )
    install = f"pip install 'lazysession[{extra}]'" if extra else f"pip install {name}"
    return f"{needed_by} needs {name}, which is not installed: {install}"


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def _check_redis_url(url: str) -> None:
    """redis-py reads ``redis://host/abc`` as database 0; refuse what it would misread."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "unix":
        return
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ConfigurationError(f"{_redacted(url)}: the port is not a number") from None
    database = unquote(parts.path).strip("/")
    if database and not database.isdigit():
        raise ConfigurationError(
            f"{_redacted(url)}: the database {database!r} is not a number (redis://host:6379/0)"
        )


def _redacted(url: str) -> str:
    """The URL with its password hidden, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def check_store_url(url: str) -> str:
    """``url`` if it names a store lazysession can build; a ``ConfigurationError``
    otherwise. Nothing is imported or connected."""
    scheme = _scheme(url)
    if scheme in ("cookie", "memory"):
        return url
    if scheme in _REDIS_SCHEMES:
        _check_redis_url(url)
        return url
    if scheme.split("+")[0] in _SQL_SCHEMES:
        return url
    raise ConfigurationError(
        f"cannot tell which store {_redacted(url)!r} names: use cookie://, memory://, "
        "redis://..., or a database URL such as sqlite+aiosqlite:///sessions.db"
    )


def store_from_url(url: str, **options: Any) -> Store | CookieStore:
    """The store a URL names: ``cookie://``, ``memory://``, ``redis://`` (``rediss://``,
    ``unix://``, ``redis+cluster://``), or any SQLAlchemy URL. ``options`` go to the
    store's constructor.

    Raises:
        ConfigurationError: the URL names no store, or a malformed one.
        ImportError: the store's optional dependency is not installed (the message
            names the extra to install).
    """
    scheme = _scheme(check_store_url(url))
    if scheme == "cookie":
        return CookieStore(**options)
    if scheme == "memory":
        return MemoryStore(**options)
    if scheme in _REDIS_SCHEMES:
        from .stores import RedisStore

        if scheme == "redis+cluster":
            return RedisStore("redis" + url[len("redis+cluster") :], cluster=True, **options)
        return RedisStore(url, **options)
    from .stores import SQLAlchemyStore

    return SQLAlchemyStore(url, **options)
