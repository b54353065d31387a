"""Session stores. One contract (:class:`Store`), one module per back end.

``SQLAlchemyStore`` and ``RedisStore`` import their drivers on first use, so a plain
install needs neither SQLAlchemy nor redis-py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import RETIRED_MEMORY, Changes, Merge, Record, Store, SyncStore
from ._cookie import CookieStore
from ._memory import MemoryStore

if TYPE_CHECKING:
    from ._redis import RedisStore
    from ._sqlalchemy import SQLAlchemyStore

__all__ = [
    "RETIRED_MEMORY",
    "Changes",
    "CookieStore",
    "MemoryStore",
    "Merge",
    "Record",
    "RedisStore",
    "SQLAlchemyStore",
    "Store",
    "SyncStore",
]

_OPTIONAL = {
    "SQLAlchemyStore": ("._sqlalchemy", "sqlalchemy"),
    "RedisStore": ("._redis", "redis"),
}


def __getattr__(name: str) -> Any:
    if name not in _OPTIONAL:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, extra = _OPTIONAL[name]
    try:
        from importlib import import_module

        return getattr(import_module(module, __name__), name)
    except ImportError as error:
        raise ImportError(
            f"{name} needs an optional dependency: pip install 'lazysession[{extra}]' ({error})"
        ) from error
