"""Errors lazysession raises on purpose, so callers can catch them by kind."""

from __future__ import annotations

import logging

logger = logging.getLogger("lazysession")


class LazySessionError(Exception):
    """Base class of every error lazysession raises on purpose."""


class ConfigurationError(LazySessionError, ValueError):
    """The middleware or a store was set up in a way that cannot work."""


class SessionNotSerializable(LazySessionError, TypeError):
    """A session value cannot be stored as JSON; nothing was written."""

    def __init__(self, key: str, value: object) -> None:
        self.key = key
        super().__init__(
            f"session[{key!r}] holds a {type(value).__name__}, which is not JSON-serialisable; "
            "the stored session was left unchanged"
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


UNAVAILABLE_BODY = b"The session store is unavailable; please try again shortly.\n"
