"""An in-process store for development, tests and single-process apps.

Rules:
- Every operation runs whole under one lock, so each is atomic for both sides (the event
  loop and WSGI threads); the merge itself is the contract's ``merge_onto``.
- Entries are filed by the minute they expire in, so a sweep visits only the expired ones
  and yields to the event loop between batches: a million entries never stall a request.
- The store is bounded (``max_entries``, 100,000 unless told otherwise). Past the bound it
  evicts by *segmented* recency: a new session starts on probation and is promoted to the
  protected segment when a later request reads or writes it again (a login's rotation is
  such a use: the session is protected under its new id at once). Eviction takes the
  least recently used session on probation first, so a flood of sessions that are never
  used again (bots, one-shot clients) evicts only its own kind, never a session in use.
  Each eviction is counted in the metrics of every middleware using the store
  (``evicted``, exported as ``sessions_evicted``).
- The blocking side (``_memory_sync``) runs the same operations under the same lock.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import anyio.lowlevel

from .. import _json
from .._errors import ConfigurationError
from .._expiry import Clock, from_timestamp, seconds_of, to_timestamp, utc_now
from .._identity import SessionInfo, handle_of
from ._base import FOLLOW_ROTATIONS as _FOLLOW
from ._base import (
    RETIRED_MEMORY,
    Changes,
    Merge,
    OnSwept,
    Record,
    Store,
    SyncStore,
    byte_size,
    merge_onto,
    most_recent_first,
    origin_of,
    owner_of_changes,
    owner_of_data,
    session_info,
)
from ._memory_sync import _SyncMemoryStore

if TYPE_CHECKING:
    from ..metrics import Metrics

DEFAULT_MAX_ENTRIES = 100_000
_PROTECTED_SHARE = 0.8  # of max_entries, at most, for sessions used more than once
_BUCKET_SECONDS = 60
_SWEEP_BATCH = 5_000
_RETIRED = "=>"  # a retired id's text, then its successor's key (if rotated): never JSON

_Entry = tuple[float, str, int, datetime]
"""Expiry in seconds, the session's JSON text (or a rotation marker), the version of that
text, and the expiry as the datetime a read hands back (kept, not rebuilt on every read)."""


class MemoryStore(Store):
    """Sessions in a dict of this process, at most ``max_entries`` of them (``None``: no
    bound, for tests that count on keeping everything)."""

    in_process: ClassVar[bool] = True
    shares_budget: ClassVar[bool] = False
    """Its calls have no timeout to share: the shells keep no store budget for them."""

    def __init__(
        self, *, max_entries: int | None = DEFAULT_MAX_ENTRIES, clock: Clock = utc_now
    ) -> None:
        if max_entries is not None and max_entries < 1:
            raise ConfigurationError("max_entries must be at least 1, or None for no bound")
        self.max_entries = max_entries
        self._protected_cap = (
            None if max_entries is None else max(1, int(max_entries * _PROTECTED_SHARE))
        )
        self._now = seconds_of(clock)
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._probation: OrderedDict[str, None] = OrderedDict()
        self._protected: OrderedDict[str, None] = OrderedDict()
        self._versions = itertools.count(1)
        self._buckets: dict[int, set[str]] = {}
        self._retired: set[str] = set()
        self._seen: dict[str, float] = {}
        """When each owned session was last saved, merged or touched (only an owner's
        listing asks)."""
        self._owned: dict[str, str] = {}
        """The owner of each owned session."""
        self._owners: dict[str, set[str]] = {}
        """The sessions of each owner."""
        self._sync = _SyncMemoryStore(self)
        self._reports: list[Metrics] = []

    # -- the operations, each atomic under the lock, shared by both sides ------------------

    def _live(self, session_id: str) -> _Entry | None:
        entry = self._entries.get(session_id)
        if entry is None or entry[0] <= self._now():
            return None
        return entry

    def _read(self, session_id: str) -> Record | None:
        with self._lock:
            entry = self._live(session_id)
            if entry is None:
                return None
            text = entry[1]
            if text.startswith(_RETIRED):
                return Record({}, entry[3], retired=True, rotated=text != _RETIRED)
            self._used(session_id)
        data = _json.loads(text)
        return None if data is None else Record(data, entry[3], entry[2], byte_size(text))

    def _touch(self, session_id: str, expires_at: datetime, base: object = None) -> bool:
        with self._lock:
            entry = self._live(session_id)
            if entry is None or entry[1].startswith(_RETIRED):
                return False
            if base is not None and base != entry[2]:
                return False  # written since the toucher loaded it: that write's expiry stands
            moved = (to_timestamp(expires_at), entry[1], entry[2], expires_at)
            self._refile(session_id, entry[0], moved)
            if session_id in self._owned:
                self._seen[session_id] = self._now()
            return True

    def _update(self, session_id: str, changes: Changes, expires_at: datetime) -> Merge:
        with self._lock:
            entry = self._live(session_id)
            if entry is None or entry[1].startswith(_RETIRED):
                return Merge.GONE
            merge = merge_onto(entry[1], changes, entry[2])
            merged = merge.text
            if merged is None:
                self._retire(session_id, "")
                return Merge.EMPTIED
            kept = merge.keep_expiry
            if kept:
                expires_at = entry[3]
            new = (to_timestamp(expires_at), merged, next(self._versions), expires_at)
            self._refile(session_id, entry[0], new)
            if session_id in self._owned:
                self._seen[session_id] = self._now()
            self._used(session_id)
            return Merge.KEPT if kept else Merge.APPLIED

    def _rotate(self, old_id: str, new_id: str, changes: Changes, expires_at: datetime) -> Merge:
        with self._lock:
            entry = self._live(old_id)
            if entry is None or entry[1].startswith(_RETIRED) or new_id in self._entries:
                return Merge.GONE
            merged = merge_onto(entry[1], changes, entry[2]).text
            self._retire(old_id, new_id)
            origin = origin_of(entry[1])  # an id a failed rotation left live ends now
            if origin is not None:
                before = self._live(origin)
                if before is not None and not before[1].startswith(_RETIRED):
                    self._retire(origin, "")
            if merged is None:
                return Merge.EMPTIED
            self._add(new_id, (to_timestamp(expires_at), merged, next(self._versions), expires_at))
            self._own(new_id, owner_of_changes(changes))
            self._used(new_id)  # the session in use moved: it must not start over on probation
            return Merge.APPLIED

    def _save(self, session_id: str, data: dict[str, Any], expires_at: datetime) -> None:
        text = _json.dumps(data)
        with self._lock:
            self._remove(session_id)
            self._add(
                session_id, (to_timestamp(expires_at), text, next(self._versions), expires_at)
            )
            self._own(session_id, owner_of_data(data))

    def _delete(self, session_id: str) -> None:
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None:
                return
            if not entry[1].startswith(_RETIRED):
                self._retire(session_id, "")
                return
            # A logout with a retired id: end the session it was rotated to (and what that one
            # moved to), keeping each of those ids from being created by a rotation still
            # under way.
            for _ in range(_FOLLOW):
                successor = entry[1][len(_RETIRED) :]
                if not successor:
                    return
                self._entries[session_id] = (entry[0], _RETIRED, entry[2], entry[3])
                following = self._entries.get(successor)
                self._retire(successor, "")
                if following is None or not following[1].startswith(_RETIRED):
                    return
                session_id, entry = successor, following

    def _claim(self, ended_id: str, new_id: str) -> bool:
        with self._lock:
            entry = self._live(ended_id)
            if entry is None or entry[1] != _RETIRED:  # live, or rotated (claimed) already
                return False
            self._entries[ended_id] = (entry[0], _RETIRED + new_id, entry[2], entry[3])
            return True

    def _count(self) -> int:
        with self._lock:
            return len(self._entries) - len(self._retired)

    def _sessions_of(self, owner: str) -> list[SessionInfo]:
        with self._lock:
            found = []
            for session_id in self._owners.get(owner, ()):
                entry = self._live(session_id)
                if entry is not None:
                    seen = from_timestamp(self._seen.get(session_id, entry[0]))
                    found.append((session_id, entry[1], entry[3], seen))
        return most_recent_first([session_info(*held) for held in found])

    def _revoke(self, owner: str, handle: str | None, keep: str | None) -> int:
        """End the owner's session named ``handle`` (None: all but ``keep``)."""
        with self._lock:
            ended = 0
            for session_id in list(self._owners.get(owner, ())):
                named = handle_of(session_id)
                if (handle is not None and named != handle) or named == keep:
                    continue
                if self._live(session_id) is not None:
                    ended += 1
                self._retire(session_id, "")
            return ended

    # -- filing, under the lock ------------------------------------------------------------

    def _retire(self, session_id: str, successor: str) -> None:
        """Replace the id's entry with a marker (naming ``successor``, if any) that lives
        ``RETIRED_MEMORY`` seconds."""
        until = self._now() + RETIRED_MEMORY
        old = self._entries.get(session_id)
        marker = (until, _RETIRED + successor, next(self._versions), from_timestamp(until))
        if old is None:
            self._add(session_id, marker)
        else:
            self._refile(session_id, old[0], marker)
        self._retired.add(session_id)
        self._disown(session_id)

    def _own(self, session_id: str, owner: str | None) -> None:
        if owner is not None:
            self._seen[session_id] = self._now()
            self._owned[session_id] = owner
            self._owners.setdefault(owner, set()).add(session_id)

    def _disown(self, session_id: str) -> None:
        owner = self._owned.pop(session_id, None)
        if owner is not None:
            self._seen.pop(session_id, None)
            held = self._owners[owner]
            held.discard(session_id)
            if not held:
                del self._owners[owner]

    def _add(self, session_id: str, entry: _Entry) -> None:
        bound = self.max_entries
        if bound is not None:
            while len(self._entries) >= bound:
                victims = self._probation or self._protected
                self._remove(next(iter(victims)))
                for metrics in self._reports:
                    metrics.evicted += 1
        self._entries[session_id] = entry
        self._probation[session_id] = None
        self._buckets.setdefault(int(entry[0] // _BUCKET_SECONDS), set()).add(session_id)

    def _used(self, session_id: str) -> None:
        """A later request used the session: it is in use, and protected from floods."""
        if self._protected_cap is None:
            return
        if session_id in self._protected:
            self._protected.move_to_end(session_id)
            return
        self._probation.pop(session_id, None)
        self._protected[session_id] = None
        if len(self._protected) > self._protected_cap:
            demoted, _ = self._protected.popitem(last=False)
            self._probation[demoted] = None

    def _refile(self, session_id: str, old_expires: float, entry: _Entry) -> None:
        """Replace a held entry, moving it to the bucket of its new expiry only if that is
        another minute."""
        self._entries[session_id] = entry
        old_bucket, bucket = int(old_expires // _BUCKET_SECONDS), int(entry[0] // _BUCKET_SECONDS)
        if bucket != old_bucket:
            self._unfile(session_id, old_bucket)
            self._buckets.setdefault(bucket, set()).add(session_id)

    def _remove(self, session_id: str) -> bool:
        """Drop an entry and its filing."""
        entry = self._entries.pop(session_id, None)
        if entry is None:
            return False
        self._retired.discard(session_id)
        self._disown(session_id)
        if session_id in self._probation:
            del self._probation[session_id]
        else:
            self._protected.pop(session_id, None)
        self._unfile(session_id, int(entry[0] // _BUCKET_SECONDS))
        return True

    def _unfile(self, session_id: str, bucket: int) -> None:
        keys = self._buckets[bucket]
        keys.discard(session_id)
        if not keys:
            del self._buckets[bucket]

    def _sweep_batch(self, now: float, on_swept: OnSwept | None = None) -> tuple[int, bool]:
        """Delete up to one batch of expired entries; report whether more may be left.
        ``on_swept`` is told the owned ones, once the lock is released."""
        swept: list[tuple[str, str]] | None = None if on_swept is None else []
        deleted, more = 0, False
        with self._lock:
            current = now // _BUCKET_SECONDS
            for bucket in sorted(b for b in self._buckets if b <= current):
                for session_id in list(self._buckets[bucket]):
                    if self._entries[session_id][0] > now:
                        continue  # lives on, later in this same minute
                    if swept is not None and (owner := self._owned.get(session_id)):
                        swept.append((session_id, owner))
                    self._remove(session_id)
                    deleted += 1
                    if deleted >= _SWEEP_BATCH:
                        more = True
                        break
                if more:
                    break
        if swept:
            assert on_swept is not None
            on_swept(swept)
        return deleted, more

    # -- async side ------------------------------------------------------------------------

    async def read(self, session_id: str) -> Record | None:
        """The session under ``session_id``, unless it has expired."""
        return self._read(session_id)

    async def touch(self, session_id: str, *, expires_at: datetime, base: object = None) -> bool:
        """Move a live session's expiry; whether it did."""
        return self._touch(session_id, expires_at, base)

    async def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        """Merge ``changes`` onto the stored copy, under the lock."""
        return self._update(session_id, changes, expires_at)

    async def rotate(
        self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime
    ) -> Merge:
        """Move the live session ``old_id`` to ``new_id`` with ``changes`` merged on, in one
        step under the lock."""
        return self._rotate(old_id, new_id, changes, expires_at)

    async def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        """Store a new session whole."""
        self._save(session_id, data, expires_at)

    async def delete(self, session_id: str) -> None:
        """End the session (its id is retired), and its successor or origin."""
        self._delete(session_id)

    async def claim(self, ended_id: str, new_id: str) -> bool:
        """See :meth:`Store.claim`."""
        return self._claim(ended_id, new_id)

    async def sweep(self, *, on_swept: OnSwept | None = None) -> int:
        """Delete every expired session, a batch at a time, yielding to the loop between;
        ``on_swept`` is told the owned sessions of each batch."""
        now = self._now()
        total, more = self._sweep_batch(now, on_swept)
        while more:
            await anyio.lowlevel.checkpoint()
            deleted, more = self._sweep_batch(now, on_swept)
            total += deleted
        return total

    async def count(self) -> int:
        """How many sessions are held, expired but not yet swept ones included."""
        return self._count()

    async def sessions_of(self, owner: str) -> list[SessionInfo]:
        """The owner's live sessions, the most recently seen first."""
        return self._sessions_of(owner)

    async def revoke(self, owner: str, handle: str) -> bool:
        """End the session of ``owner`` that ``handle`` names; whether there was one."""
        return self._revoke(owner, handle, None) > 0

    async def revoke_all(self, owner: str, *, keep: str | None = None) -> int:
        """End every session of ``owner`` but ``keep``; how many were ended."""
        return self._revoke(owner, None, keep)

    def report_to(self, metrics: Metrics) -> None:
        """Count the sessions evicted to stay within ``max_entries`` into ``metrics``
        (``evicted``); each middleware that uses the store hands it its own."""
        with self._lock:
            if not any(held is metrics for held in self._reports):
                self._reports.append(metrics)

    @property
    def sync(self) -> SyncStore:
        """The blocking side: the same dictionary, under the same lock."""
        return self._sync
