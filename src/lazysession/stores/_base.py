"""The store contract: what every back end promises, async for ASGI and sync for WSGI.

Rules every store keeps:
- ``session_id`` is the key the core derived from the cookie (the session's creation time
  and a SHA-256 of its id: ``_signing.store_key``); stores never see the cookie itself.
- ``read`` never returns an expired session, whether or not it has been swept. An id that
  was *retired* (rotated away, or its session ended) reads, for ``RETIRED_MEMORY``
  seconds, as a record with ``retired`` set and no data: the id grants nothing. While it
  names the session it was rotated to (``rotated``), a request still carrying it (a
  second tab, a slow XHR) knows not to mint a session of its own, which would replace
  the browser's newer cookie.
- ``save`` stores a *new* session whole (its id was just minted); readers see all of it or
  nothing.
- ``update`` merges one request's changes onto the latest stored copy, atomically, so two
  requests that change different keys of one session both keep their change (on the same
  key, the last writer wins). With ``changes.replace`` (the request cleared the session
  first) it replaces the data instead, still only if the session is there. It never
  brings back a session that is gone (expired, ended or rotated): ``Merge.GONE``. A
  merge that leaves no key ends the session: ``Merge.EMPTIED``. A merge whose result
  would pass ``changes.max_size`` and is larger than the stored copy raises
  :class:`~lazysession.SessionTooLarge` and leaves the stored session as it was.
- ``rotate`` moves a live session to a new id (login): the old id becomes a marker that
  names its successor, and the new id is created from the latest stored data with the
  request's changes merged on. If the old session is gone, nothing is created.
- ``delete`` ends a session (its id is retired), and, when the id was rotated, the session
  it was rotated to (a logout racing a login leaves neither alive); that id is retired
  too, so a rotation still under way cannot create it afterwards. It also ends the id a
  session says it was rotated from (``Meta.origin``), in case that rotation could not
  retire it.
- ``touch`` moves the expiry of a live session without rewriting its data and says
  whether it did; it never brings back a session that has expired or been deleted. With
  ``base`` (the ``Record.version`` the toucher loaded) it moves nothing, and says False,
  when the stored copy is another by now: the write that came in between set the expiry
  from the metadata it stored (a ``pin()``, a new lifetime), which a toucher that loaded
  before it must not undo.
- A merge whose changes do not carry metadata of their own (``Changes.own_meta`` False:
  the request changed no lifetime, pin or owner) onto a copy other than ``base`` keeps
  the stored metadata and the stored expiry: both came from a write the request did not
  see.
- ``sweep`` deletes every expired session (and spent rotation markers), in bounded
  batches, and returns how many; it is safe to run from many processes at once. A
  store's ``sweep`` (each side) may take ``on_swept=`` (an ``OnSwept``; the memory and
  SQL stores do, and the middleware then tells ``on_event`` of ``swept`` sessions):
  after each batch that deleted owned sessions, it is told their ``(store key, owner)``
  pairs, each session once even when several processes sweep at once; anonymous
  sessions are never reported. A store that expires sessions by itself (Redis) has no
  sweep to report from: its expired sessions are never reported.
- ``count`` counts the sessions held, expired-but-unswept included (retired ids are not
  sessions and are left out).
- A session's *owner* is the ``OWNER`` field of the metadata a ``save`` or a ``rotate``
  stores (the app named one at login: ``regenerate(owner=...)``); ``update`` and ``touch``
  never change it. ``sessions_of(owner)`` lists the owner's live sessions (expired ones
  never, swept or not; retired ids never), the most recently seen first; a session is
  *seen* when it is saved, merged, rotated to or touched. ``revoke(owner, handle)`` ends
  the one session of ``owner`` with that handle (``_identity.handle_of`` its key) as
  ``delete`` does, and ``revoke_all(owner, keep=handle)`` every one but ``keep``,
  returning how many it ended: a login that completed before it began is ended, and no
  write racing it brings an ended session back. ``delete`` and ``sweep`` keep the index
  right: an ended or expired session is never listed.
- Data is JSON, never pickle; a value that is not JSON-serialisable fails before any I/O.

The merge rule stores share, and what a session's JSON says of itself, are in ``_merge``;
how a back end's errors become a ``StoreError``, in ``_driver_errors``.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from .._identity import SessionInfo
from ._driver_errors import StoreErrors as StoreErrors
from ._driver_errors import describe_error as describe_error
from ._merge import Merged as Merged
from ._merge import byte_size as byte_size
from ._merge import has_keys as has_keys
from ._merge import merge_onto as merge_onto
from ._merge import most_recent_first as most_recent_first
from ._merge import origin_of as origin_of
from ._merge import owner_in as owner_in
from ._merge import owner_of_changes as owner_of_changes
from ._merge import owner_of_data as owner_of_data
from ._merge import session_info as session_info
from ._merge import with_origin as with_origin

if TYPE_CHECKING:
    from ..metrics import Metrics


@dataclass(slots=True)  # built per request: frozen ones cost twice as much
class Changes:
    """What one request did to a session: keys set, keys removed, or a full replace.

    ``whole`` is the session as the request left it, JSON-encoded, and ``base`` the
    ``Record.version`` it was loaded from: a store whose copy is still that version can
    store ``whole`` as is, since merging would give the same session. ``empty``: the
    request left the session with no key (after a merge it may still hold others').
    ``max_size``: the bytes of JSON the merged session may hold (a merge that would pass
    it fails, unless it shrinks a session already over it)."""

    set: dict[str, Any] = field(default_factory=dict)
    removed: frozenset[str] = frozenset()
    replace: bool = False
    whole: str | None = None
    base: object = None
    empty: bool = False
    max_size: int | None = None
    own_meta: bool = True
    """The request set the session's metadata (a new session, a login, a lifetime, a
    pin): its ``META_KEY`` entry and its expiry stand. False: they are as it loaded them,
    and give way to a stored copy that changed since (``base``)."""

    def apply_to(self, stored: Mapping[str, Any] | None) -> dict[str, Any]:
        """The session after merging these changes onto ``stored`` (the latest copy)."""
        if self.replace or stored is None:
            merged: dict[str, Any] = {}
        else:
            merged = {k: v for k, v in stored.items() if k not in self.removed}
        merged.update(self.set)
        return merged


OnSwept = Callable[[list[tuple[str, str]]], None]
"""What a reporting ``sweep`` tells after a batch: the ``(store key, owner)`` of each
owned session the batch deleted. It is called between batches, on the thread (or event
loop) running the sweep; it should return quickly."""


FOLLOW_ROTATIONS = 64
"""Rotations a logout follows, at most: it ends the session an id was rotated to, and the
one that was rotated to, and so on (logins in quick succession, a "sudo mode" that
regenerates at each step). Each step is one store round trip; the cap only keeps a
store's answer bounded."""


RETIRED_MEMORY = 60
"""Seconds a retired id (rotated away at login, or ended) is remembered: a request that
set out with it before the login or logout answered (a second tab, a slow XHR) neither
reads the new session, nor writes, nor replaces the browser's cookie. After that the id
reads as unknown, like any other."""


class Merge(enum.Enum):
    """What an ``update`` or ``rotate`` did; false only for ``GONE``."""

    APPLIED = "applied"
    """Written: the session lives on (under the new id, for a rotation)."""
    KEPT = "kept"
    """Written onto a copy another request stored since this one's load, whose metadata
    and expiry stood (``Changes.own_meta`` false): the cookie that request sent is right.
    A store may answer ``APPLIED`` instead; the browser's cookie then follows this write."""
    EMPTIED = "emptied"
    """The result held no key, so the session was ended (its id retired)."""
    GONE = "gone"
    """The session was not there (expired, ended or rotated): nothing was written."""

    def __bool__(self) -> bool:
        """False for ``GONE`` only: ``if merged:`` reads as "the write happened"."""
        return self is not Merge.GONE


@dataclass(slots=True)  # built per request: frozen ones cost twice as much
class Record:
    """A stored session: its data and when it expires. ``version``, where a store keeps
    one, names this copy: an ``update`` based on it (``Changes.base``) may then store the
    writer's whole session instead of merging, when no other write came in between.
    ``size`` is the stored JSON's length in bytes, where the store knows it (a session
    already over ``max_size`` may then still shrink). ``retired``: the id was rotated away
    or ended moments ago; ``data`` is empty. ``rotated`` (with ``retired``): it was rotated
    away, so the browser may hold the cookie of the id it moved to; an id that was ended
    (or whose successor a logout ended since) has none."""

    data: dict[str, Any]
    expires_at: datetime
    version: object = None
    size: int | None = None
    retired: bool = False
    rotated: bool = False


class SyncStore(abc.ABC):
    """The blocking side of a store, for WSGI servers and command-line tools."""

    @abc.abstractmethod
    def read(self, session_id: str) -> Record | None:
        """The session stored under ``session_id``, or None when there is none (or it has
        expired, swept or not); a retired id reads, for a while, as a ``retired`` record."""

    def load(self, session_id: str) -> dict[str, Any] | None:
        """The data of the live session under ``session_id``; None for none or a retired id."""
        record = self.read(session_id)
        return None if record is None or record.retired else record.data

    @abc.abstractmethod
    def touch(self, session_id: str, *, expires_at: datetime, base: object = None) -> bool:
        """Move a live session's expiry; False (and nothing written) when it is gone, or
        when it is no longer the copy ``base`` names."""

    @abc.abstractmethod
    def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        """Merge ``changes`` (or replace, with ``changes.replace``) onto a live session."""

    @abc.abstractmethod
    def rotate(self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        """Move the live session ``old_id`` to ``new_id``, merging ``changes`` on."""

    @abc.abstractmethod
    def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        """Store a new session whole."""

    @abc.abstractmethod
    def delete(self, session_id: str) -> None:
        """End the session (its id is retired), and the session it was rotated to or from."""

    def claim(self, ended_id: str, new_id: str) -> bool:
        """Make the retired id of an *ended* session name ``new_id`` as its successor,
        as a rotation would, if it names none yet; whether it did. (A store that keeps no
        retired ids claims none: a write with an ended id is then refused.)"""
        return False

    @abc.abstractmethod
    def sweep(self) -> int:
        """Delete every expired session (and spent rotation markers); how many."""

    @abc.abstractmethod
    def count(self) -> int:
        """How many sessions are held, expired but not yet swept ones included."""

    def sessions_of(self, owner: str) -> list[SessionInfo]:
        """The owner's live sessions, the most recently seen first."""
        raise NotImplementedError(f"{type(self).__name__} keeps no index of owners")

    def revoke(self, owner: str, handle: str) -> bool:
        """End the session of ``owner`` named by ``handle``; whether there was one."""
        raise NotImplementedError(f"{type(self).__name__} keeps no index of owners")

    def revoke_all(self, owner: str, *, keep: str | None = None) -> int:
        """End every session of ``owner`` but the one named ``keep``; how many."""
        raise NotImplementedError(f"{type(self).__name__} keeps no index of owners")

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release connections the store opened itself."""


class Store(abc.ABC):
    """A session store. Its methods are async (ASGI); ``store.sync`` is its blocking side."""

    client_side: ClassVar[bool] = False
    """True when the data travels in the cookie and the store holds nothing."""

    in_process: ClassVar[bool] = False
    """True when the sessions live in this process's memory: no other process (another
    worker, the ``lazysession`` command) can see them."""

    expires_by_itself: ClassVar[bool] = False
    """True when the back end deletes expired sessions itself (Redis keys carry a TTL):
    ``sweep`` has nothing to do and there is never a backlog."""

    @property
    def keeps_owners(self) -> bool:
        """Whether the store keeps an index of owners: it implements ``sessions_of``,
        ``revoke`` and ``revoke_all`` (the ones here raise ``NotImplementedError``)."""
        return type(self).sessions_of is not Store.sessions_of

    @abc.abstractmethod
    async def read(self, session_id: str) -> Record | None:
        """The session stored under ``session_id``, or None when there is none (or it has
        expired, swept or not); a retired id reads, for a while, as a ``retired`` record."""

    async def load(self, session_id: str) -> dict[str, Any] | None:
        """The data of the live session under ``session_id``; None for none or a retired id."""
        record = await self.read(session_id)
        return None if record is None or record.retired else record.data

    @abc.abstractmethod
    async def touch(self, session_id: str, *, expires_at: datetime, base: object = None) -> bool:
        """Move a live session's expiry; False (and nothing written) when it is gone, or
        when it is no longer the copy ``base`` names."""

    @abc.abstractmethod
    async def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        """Merge ``changes`` (or replace, with ``changes.replace``) onto a live session."""

    @abc.abstractmethod
    async def rotate(
        self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime
    ) -> Merge:
        """Move the live session ``old_id`` to ``new_id``, merging ``changes`` on."""

    @abc.abstractmethod
    async def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        """Store a new session whole."""

    async def claim(self, ended_id: str, new_id: str) -> bool:
        """See :meth:`SyncStore.claim`: the first write with an ended id (a logout whose
        answer the browser never got) claims it for the session it starts, so a second
        write with that id at once is refused instead of starting another session."""
        return False

    @abc.abstractmethod
    async def delete(self, session_id: str) -> None:
        """End the session (its id is retired), and the session it was rotated to or from."""

    @abc.abstractmethod
    async def sweep(self) -> int:
        """Delete every expired session (and spent rotation markers); how many."""

    @abc.abstractmethod
    async def count(self) -> int:
        """How many sessions are held, expired but not yet swept ones included."""

    async def sessions_of(self, owner: str) -> list[SessionInfo]:
        """The owner's live sessions (``regenerate(owner=...)`` named it at login), the
        most recently seen first; expired and ended ones never appear."""
        raise NotImplementedError(f"{type(self).__name__} keeps no index of owners")

    async def revoke(self, owner: str, handle: str) -> bool:
        """End the session of ``owner`` that ``handle`` names (as a logout would); whether
        there was one. Another owner's session with that handle is left alone."""
        raise NotImplementedError(f"{type(self).__name__} keeps no index of owners")

    async def revoke_all(self, owner: str, *, keep: str | None = None) -> int:
        """End every session of ``owner`` but the one named ``keep`` ("log out other
        devices"); how many were ended."""
        raise NotImplementedError(f"{type(self).__name__} keeps no index of owners")

    async def aclose(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release connections the store opened itself."""

    def report_to(self, metrics: Metrics) -> None:  # noqa: B027 - most stores see nothing more
        """Count what only the store sees (a ``MemoryStore``'s evictions) into ``metrics``,
        the middleware's counters, from now on."""

    @property
    @abc.abstractmethod
    def sync(self) -> SyncStore:
        """The same store, with blocking methods."""
