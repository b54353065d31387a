"""A back end's errors as :class:`~lazysession.StoreError`, named by what failed.

Rules:
- A message keeps the action, the error's type (and the driver's, under SQLAlchemy's) and
  the driver's error code where it has one (SQLSTATE, a MySQL or SQLite error, a Redis
  error word, an errno), never the driver's text: it may carry session data, hashed ids
  or statement parameters. Only fixed server phrases that name a cause are kept (what
  cancelled a PostgreSQL statement, two whole Redis messages).
- The driver's error is not chained (``from None``), so a traceback does not print it.
"""

from __future__ import annotations

import errno
import re

from .._errors import StoreError


class StoreErrors:
    """``with StoreErrors("loading a session", (DriverError, ...)):`` raises the back end's
    own errors as :class:`~lazysession.StoreError`, naming what failed. (A class rather
    than a generator-based context manager: it wraps every store call.)

    The message keeps the action, the error's type (and the driver's, under SQLAlchemy's)
    and the driver's error code where it has one (SQLSTATE, a MySQL or SQLite error, a
    Redis error word, an errno), never the driver's text: SQLAlchemy's carries the
    statement's parameters, which are session data and hashed ids, and database messages
    quote values too. The driver's error is not chained (``from None``), so a traceback
    does not print it either."""

    __slots__ = ("action", "errors")

    def __init__(self, action: str, errors: tuple[type[BaseException], ...]) -> None:
        self.action = action
        self.errors = errors

    def __enter__(self) -> None:
        """Start the store call; nothing to set up."""
        return None

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        """Raise one of ``errors`` as a ``StoreError`` naming the action; others pass."""
        if error is not None and isinstance(error, self.errors):
            raise StoreError(f"{self.action} failed: {describe_error(error)}") from None


_ERROR_WORD = re.compile(r"[A-Z][A-Z_]{1,31}")


def describe_error(error: BaseException) -> str:
    """``error``'s type, its driver's type and its code: what an operator needs to look a
    failure up, and nothing the statement carried."""
    kind = type(error).__name__
    driver = getattr(error, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's
    if isinstance(driver, BaseException):
        if type(driver).__name__ != kind:
            kind = f"{kind} ({type(driver).__name__})"
    else:
        driver = error
    code = _error_code(driver)
    return kind if code is None else f"{kind}, {code}"


def _error_code(error: BaseException) -> str | None:
    codes = []
    for name in ("sqlstate", "pgcode"):  # psycopg, pymysql, asyncpg (SQLAlchemy's), psycopg2
        state = getattr(error, name, None)
        if isinstance(state, str) and len(state) == 5 and state.isalnum():
            codes.append(f"SQLSTATE {state}")
            if state == _CANCELLED:
                codes.extend(cause for cause in _CANCEL_CAUSES if cause in str(error))
            break
    first = error.args[0] if error.args else None
    sqlite = getattr(error, "sqlite_errorname", None)
    if isinstance(sqlite, str) and _ERROR_WORD.fullmatch(sqlite):
        codes.append(sqlite)
    elif isinstance(error, OSError) and error.errno:
        codes.append(errno.errorcode.get(error.errno, f"errno {error.errno}"))
    elif isinstance(first, int) and not isinstance(first, bool):  # MySQL and MariaDB drivers
        codes.append(f"error {first}")
    elif isinstance(first, str) and type(error).__module__.startswith("redis"):
        if first in _FIXED_REDIS_MESSAGES:
            codes.append(first)
        else:
            word = first.split(" ", 1)[0]  # a Redis error reply starts with its code
            if word in _REDIS_CODES:
                codes.append(word)
    return ", ".join(codes) or None


_REDIS_CODES = frozenset(
    [
        "ASK",
        "BUSY",
        "BUSYKEY",
        "CLUSTERDOWN",
        "CROSSSLOT",
        "EXECABORT",
        "LOADING",
        "MASTERDOWN",
        "MISCONF",
        "MOVED",
        "NOAUTH",
        "NOPERM",
        "NOPROTO",
        "NOREPLICAS",
        "NOSCRIPT",
        "NOTBUSY",
        "OOM",
        "READONLY",
        "TRYAGAIN",
        "UNBLOCKED",
        "WRONGPASS",
        "WRONGTYPE",
    ]
)
"""The error codes Redis starts its replies with (redis-py strips a plain ``ERR``)."""
_CANCELLED = "57014"
"""PostgreSQL's SQLSTATE for a cancelled statement, whatever cancelled it."""
_CANCEL_CAUSES = ("statement timeout", "user request")
"""What PostgreSQL's fixed message for ``57014`` names as the canceller ("canceling
statement due to ..."): the server's statement timer, or a cancel request (a client's
deadline, ``pg_cancel_backend``). Kept because they tell an operator which of the two
fired, and carry nothing of a request."""
_FIXED_REDIS_MESSAGES = frozenset(("DB index is out of range", "invalid DB index"))
"""Whole Redis error messages that carry nothing of a request, kept as they are."""
