"""Errors lazysession raises on purpose, so callers can catch them by kind."""

from __future__ import annotations

import logging

logger = logging.getLogger("lazysession")


class LazySessionError(Exception):
    """Base class of every error lazysession raises on purpose."""


class ConfigurationError(LazySessionError, ValueError):
    """The middleware or a store was set up in a way that cannot work."""


class SessionNotSerializable(LazySessionError, TypeError):
    """A session key or value cannot be stored as JSON; nothing was written.

    ``key`` is the session's key at fault (itself, when it is not a ``str``). The message
    names the key and the kind of value, never the value itself."""

    def __init__(self, key: object, value: object, why: str | None = None) -> None:
        self.key = key
        if why is None:
            why = f"holds a {type(value).__name__}, which is not JSON-serialisable"
        super().__init__(f"session[{_shown(key)}] {why}; the stored session was left unchanged")


def _shown(key: object) -> str:
    try:
        return repr(key)
    except ValueError:  # an int past sys.get_int_max_str_digits()
        return f"<{type(key).__name__} too long to show>"


class SessionKeyReserved(LazySessionError, ValueError):
    """A handler set the session key lazysession keeps the session's metadata under
    (``"__lazysession__"``): refused where it is set, before any store I/O, on every
    shell and store. ``key`` is that key."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"session[{key!r}] is reserved: lazysession keeps the session's metadata "
            "under that key; store the value under another name"
        )


class SessionTooLarge(LazySessionError, ValueError):
    """The encoded session passes a size limit; nothing was written or sent."""

    def __init__(self, size: int, limit: int, where: str) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"the encoded session is {size} bytes, over the {limit}-byte limit of {where}; "
            "keep large data server side (pass store=...) or store less in the session"
        )


class StoreError(LazySessionError):
    """A store could not be reached or answered with an error."""


class SessionUnavailable(LazySessionError):
    """The store could not load this request's session; the middleware answers 503."""


def report_store_error(error: BaseException, consequence: str) -> None:
    """One log line for a store failure met while serving a request."""
    logger.error("lazysession: session store failed (%s); %s", error, consequence)


class SessionInterrupted(LazySessionError):
    """The session ended or moved to a new id while this request ran (a logout, a login
    or an emptying write in another tab): its changes were not saved, and the middleware
    answers 409 instead of a success that would have lost them."""


UNAVAILABLE_BODY = b"The session store is unavailable; please try again shortly.\n"
INTERRUPTED_BODY = (
    b"The session changed while this request ran (a login or logout in another tab); "
    b"nothing was saved. Please try again.\n"
)
