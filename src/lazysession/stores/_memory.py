"""An in-process store for development, tests and single-process apps.

Entries are filed by the minute they expire in, so a sweep visits only the expired ones
and yields to the event loop between batches: a million entries never stall a request.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

import anyio
import anyio.lowlevel

from .. import _json
from .._errors import ConfigurationError
from .._expiry import Clock, seconds_of, to_timestamp, utc_now
from .._session import Changes
from ._base import Record, Store, SyncStore

logger = logging.getLogger("lazysession")

_BUCKET_SECONDS = 60
_SWEEP_BATCH = 5_000

_Entry = tuple[float, str, int, datetime]
"""Expiry in seconds, the session's JSON text, the version of that text, and the expiry
as the datetime a read hands back (kept, rather than rebuilt on every read)."""


class MemoryStore(Store):
    """Sessions in a dict of this process. ``max_entries`` bounds memory: past it, the
    least recently written session is evicted to make room."""

    def __init__(self, *, max_entries: int | None = None, clock: Clock = utc_now) -> None:
        if max_entries is not None and max_entries < 1:
            raise ConfigurationError("max_entries must be at least 1, or None for no bound")
        self.max_entries = max_entries
        self._now = seconds_of(clock)
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._versions = itertools.count(1)
        self._buckets: dict[int, set[str]] = {}
        self._sync = _SyncMemoryStore(self)
        self.evicted = 0

    # -- the shared logic, called under no lock by both sides ------------------------------

    def _read(self, session_id: str) -> Record | None:
        entry = self._entries.get(session_id)
        if entry is None or entry[0] <= self._now():
            return None
        data = _json.loads(entry[1])
        return None if data is None else Record(data, entry[3], entry[2])

    def _touch(self, session_id: str, expires_at: datetime) -> None:
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None or entry[0] <= self._now():
                return
            self._refile(
                session_id, entry[0], (to_timestamp(expires_at), entry[1], entry[2], expires_at)
            )

    def _update(self, session_id: str, changes: Changes, expires_at: datetime) -> bool:
        expires = to_timestamp(expires_at)
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None or entry[0] <= self._now():
                return False
            if changes.whole is not None and changes.base == entry[2]:
                text = changes.whole  # no write since the writer's load: merging is a no-op
            else:
                text = _json.dumps(changes.apply_to(_json.loads(entry[1])))
            self._refile(session_id, entry[0], (expires, text, next(self._versions), expires_at))
            return True

    def _file(self, session_id: str, entry: _Entry) -> None:
        self._entries[session_id] = entry
        self._buckets.setdefault(int(entry[0] // _BUCKET_SECONDS), set()).add(session_id)

    def _refile(self, session_id: str, old_expires: float, entry: _Entry) -> None:
        """Replace a held entry: it becomes the most recently written, and moves to the
        bucket of its new expiry only if that is another minute."""
        self._entries[session_id] = entry
        self._entries.move_to_end(session_id)
        old_bucket, bucket = int(old_expires // _BUCKET_SECONDS), int(entry[0] // _BUCKET_SECONDS)
        if bucket != old_bucket:
            self._unfile(session_id, old_bucket)
            self._buckets.setdefault(bucket, set()).add(session_id)

    def _save(self, session_id: str, data: dict[str, Any], expires_at: datetime) -> None:
        text = _json.dumps(data)
        expires = to_timestamp(expires_at)
        with self._lock:
            self._remove(session_id)
            if self.max_entries is not None:
                while len(self._entries) >= self.max_entries:
                    self._remove(next(iter(self._entries)))
                    self.evicted += 1
            self._file(session_id, (expires, text, next(self._versions), expires_at))

    def _delete(self, session_id: str) -> None:
        with self._lock:
            self._remove(session_id)

    def _remove(self, session_id: str) -> bool:
        """Drop an entry and its filing; the caller holds the lock."""
        entry = self._entries.pop(session_id, None)
        if entry is None:
            return False
        self._unfile(session_id, int(entry[0] // _BUCKET_SECONDS))
        return True

    def _unfile(self, session_id: str, bucket: int) -> None:
        keys = self._buckets[bucket]
        keys.discard(session_id)
        if not keys:
            del self._buckets[bucket]

    def _sweep_batch(self, now: float) -> tuple[int, bool]:
        """Delete up to one batch of expired entries; report whether more may be left."""
        deleted = 0
        with self._lock:
            current = now // _BUCKET_SECONDS
            for bucket in sorted(b for b in self._buckets if b <= current):
                for session_id in list(self._buckets[bucket]):
                    if self._entries[session_id][0] > now:
                        continue  # lives on, later in this same minute
                    self._remove(session_id)
                    deleted += 1
                    if deleted >= _SWEEP_BATCH:
                        return deleted, True
        return deleted, False

    # -- async side ------------------------------------------------------------------------

    async def read(self, session_id: str) -> Record | None:
        return self._read(session_id)

    async def touch(self, session_id: str, *, expires_at: datetime) -> None:
        self._touch(session_id, expires_at)

    async def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> bool:
        return self._update(session_id, changes, expires_at)

    async def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        self._save(session_id, data, expires_at)

    async def delete(self, session_id: str) -> None:
        self._delete(session_id)

    async def sweep(self) -> int:
        now = self._now()
        total, more = self._sweep_batch(now)
        while more:
            await anyio.lowlevel.checkpoint()
            deleted, more = self._sweep_batch(now)
            total += deleted
        return total

    async def count(self) -> int:
        return len(self._entries)

    @property
    def sync(self) -> SyncStore:
        return self._sync


class _SyncMemoryStore(SyncStore):
    __slots__ = ("_store",)

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def read(self, session_id: str) -> Record | None:
        return self._store._read(session_id)

    def touch(self, session_id: str, *, expires_at: datetime) -> None:
        self._store._touch(session_id, expires_at)

    def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> bool:
        return self._store._update(session_id, changes, expires_at)

    def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        self._store._save(session_id, data, expires_at)

    def delete(self, session_id: str) -> None:
        self._store._delete(session_id)

    def sweep(self) -> int:
        now = self._store._now()
        total, more = self._store._sweep_batch(now)
        while more:
            deleted, more = self._store._sweep_batch(now)
            total += deleted
        return total

    def count(self) -> int:
        return len(self._store._entries)
