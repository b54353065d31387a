"""Session stores. One contract (:class:`Store`), one module per back end."""

from ._base import Store, SyncStore
from ._cookie import CookieStore
from ._memory import MemoryStore

__all__ = ["CookieStore", "MemoryStore", "Store", "SyncStore"]
