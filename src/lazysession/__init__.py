"""Lazy, Bearer-aware session middleware for ASGI and WSGI, with stores that clean up."""

from __future__ import annotations

from importlib.util import find_spec as _find_spec
from typing import TYPE_CHECKING, Any

from ._asgi import SessionMiddleware, get_session
from ._cookies import CookieSettings
from ._errors import (
    ConfigurationError,
    LazySessionError,
    SessionInterrupted,
    SessionKeyReserved,
    SessionNotSerializable,
    SessionTooLarge,
    SessionUnavailable,
    StoreError,
)
from ._identity import SessionEvent, SessionInfo
from ._request import RequestInfo, is_bearer_request, never
from ._session import Session
from .config import Settings, store_from_url
from .metrics import Metrics
from .stores import Changes, CookieStore, MemoryStore, Merge, Record, Store, SyncStore

if TYPE_CHECKING:
    from .stores import RedisStore, SQLAlchemyStore

_OPTIONAL_STORES = {"SQLAlchemyStore": "sqlalchemy", "RedisStore": "redis"}
"""Stores whose library is an optional extra, and that library's module."""

__all__ = [
    "Changes",
    "ConfigurationError",
    "CookieSettings",
    "CookieStore",
    "LazySessionError",
    "MemoryStore",
    "Merge",
    "Metrics",
    "Record",
    "RedisStore",
    "RequestInfo",
    "SQLAlchemyStore",
    "Session",
    "SessionEvent",
    "SessionInfo",
    "SessionInterrupted",
    "SessionKeyReserved",
    "SessionMiddleware",
    "SessionNotSerializable",
    "SessionTooLarge",
    "SessionUnavailable",
    "Settings",
    "Store",
    "StoreError",
    "SyncStore",
    "get_session",
    "is_bearer_request",
    "never",
    "store_from_url",
]
# ``from lazysession import *`` takes only what this install can import: a store whose
# driver library is missing is left out (importing it by name still says what to install).
__all__ = [
    name
    for name in __all__
    if name not in _OPTIONAL_STORES or _find_spec(_OPTIONAL_STORES[name]) is not None
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Stores with optional dependencies load on first use."""
    if name in _OPTIONAL_STORES:
        from . import stores

        return getattr(stores, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
