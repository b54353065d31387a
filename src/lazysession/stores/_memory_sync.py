"""The blocking side of the :class:`~lazysession.stores.MemoryStore`, for WSGI threads.

Rules:
- Each method runs the store's own operation (``MemoryStore._read``, ...), whole under
  the store's one lock: the same dictionary, the same atomicity as the async side.
- A sweep runs its batches back to back (no event loop to yield to).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._identity import SessionInfo
from ._base import Changes, Merge, OnSwept, Record, SyncStore

if TYPE_CHECKING:
    from ._memory import MemoryStore


class _SyncMemoryStore(SyncStore):
    __slots__ = ("_store",)

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def read(self, session_id: str) -> Record | None:
        return self._store._read(session_id)

    def touch(self, session_id: str, *, expires_at: datetime, base: object = None) -> bool:
        return self._store._touch(session_id, expires_at, base)

    def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        return self._store._update(session_id, changes, expires_at)

    def rotate(self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        return self._store._rotate(old_id, new_id, changes, expires_at)

    def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        self._store._save(session_id, data, expires_at)

    def delete(self, session_id: str) -> None:
        self._store._delete(session_id)

    def claim(self, ended_id: str, new_id: str) -> bool:
        return self._store._claim(ended_id, new_id)

    def sweep(self, *, on_swept: OnSwept | None = None) -> int:
        now = self._store._now()
        total, more = self._store._sweep_batch(now, on_swept)
        while more:
            deleted, more = self._store._sweep_batch(now, on_swept)
            total += deleted
        return total

    def count(self) -> int:
        return self._store._count()

    def sessions_of(self, owner: str) -> list[SessionInfo]:
        return self._store._sessions_of(owner)

    def revoke(self, owner: str, handle: str) -> bool:
        return self._store._revoke(owner, handle, None) > 0

    def revoke_all(self, owner: str, *, keep: str | None = None) -> int:
        return self._store._revoke(owner, None, keep)
