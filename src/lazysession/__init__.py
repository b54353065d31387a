"""Lazy, Bearer-aware session middleware for ASGI and WSGI, with stores that clean up."""

from ._asgi import SessionMiddleware
from ._cookies import CookieSettings
from ._errors import (
    ConfigurationError,
    LazySessionError,
    SessionNotSerializable,
    SessionTooLarge,
    StoreError,
)
from ._request import RequestInfo, is_bearer_request, never
from ._session import Changes, Session
from .stores import CookieStore, MemoryStore, Store, SyncStore

__all__ = [
    "Changes",
    "ConfigurationError",
    "CookieSettings",
    "CookieStore",
    "LazySessionError",
    "MemoryStore",
    "RequestInfo",
    "Session",
    "SessionMiddleware",
    "SessionNotSerializable",
    "SessionTooLarge",
    "Store",
    "StoreError",
    "SyncStore",
    "is_bearer_request",
    "never",
]

__version__ = "0.1.0"
