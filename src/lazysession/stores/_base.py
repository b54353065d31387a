"""The store contract: what every back end promises, async for ASGI and sync for WSGI.

Rules every store keeps:
- ``session_id`` is the key the core derived from the cookie (the session's creation time
  and a SHA-256 of its id: ``_signing.store_key``); stores never see the cookie itself.
- ``read`` never returns an expired session, whether or not it has been swept. An id that
  was *retired* (rotated away, or its session ended) reads, for ``RETIRED_MEMORY``
  seconds, as a record with ``retired`` set and no data: the id grants nothing, and a
  request still carrying it (a second tab, a slow XHR) knows not to mint a session of its
  own, which would replace the browser's newer cookie or outlive a logout.
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
  batches, and returns how many; it is safe to run from many processes at once.
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
"""

from __future__ import annotations

import abc
import enum
import errno
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from .. import _json
from .._errors import SessionTooLarge, StoreError
from .._expiry import DEVICE, META_KEY, ORIGIN, OWNER
from .._identity import SessionInfo, handle_of

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
    EMPTIED = "emptied"
    """The result held no key, so the session was ended (its id retired)."""
    GONE = "gone"
    """The session was not there (expired, ended or rotated): nothing was written."""

    def __bool__(self) -> bool:
        return self is not Merge.GONE


@dataclass(slots=True)  # built per request: frozen ones cost twice as much
class Record:
    """A stored session: its data and when it expires. ``version``, where a store keeps
    one, names this copy: an ``update`` based on it (``Changes.base``) may then store the
    writer's whole session instead of merging, when no other write came in between.
    ``size`` is the stored JSON's length in bytes, where the store knows it (a session
    already over ``max_size`` may then still shrink). ``retired``: the id was rotated away
    or ended moments ago; ``data`` is empty."""

    data: dict[str, Any]
    expires_at: datetime
    version: object = None
    size: int | None = None
    retired: bool = False


@dataclass(slots=True)
class Merged:
    """The outcome of merging changes onto a stored copy: the JSON to store (None: the
    session is left with no key and is to be deleted), and whether the stored expiry
    stands (the changes' metadata gave way to the stored copy's)."""

    text: str | None
    keep_expiry: bool = False


def has_keys(data: dict[str, Any]) -> bool:
    """Whether a session holds anything besides its own metadata."""
    return len(data) > (1 if META_KEY in data else 0)


def merge_onto(stored: str | bytes | None, changes: Changes, version: object = None) -> Merged:
    """The one merge rule every store that merges in Python uses: ``changes`` onto the
    ``stored`` JSON (None: nothing stored, as after a clear). ``version`` is the stored
    copy's, to take the writer's whole session when nothing came in between. Raises
    :class:`~lazysession.SessionTooLarge` when the result passes ``changes.max_size`` and
    is larger than what is stored."""
    same_copy = version is not None and changes.base == version
    keep = (
        not changes.own_meta
        and not same_copy
        and stored is not None
        and version is not None
        and changes.base is not None
    )
    if changes.whole is not None and (same_copy or (changes.replace and not keep)):
        if changes.empty:
            return Merged(None)
        text = changes.whole
    else:
        loaded = None if stored is None else _json.loads(stored)
        merged = changes.apply_to(None if changes.replace else loaded)
        if not has_keys(merged):
            return Merged(None)
        if keep and isinstance(loaded, dict) and META_KEY in loaded:
            merged[META_KEY] = loaded[META_KEY]  # the copy's metadata, newer than the request's
        text = _json.dumps(merged)
    limit = changes.max_size
    if limit is not None:
        size = byte_size(text)
        if size > limit and size > (0 if stored is None else byte_size(stored)):
            raise SessionTooLarge(size, limit, "max_size")
    return Merged(text, keep)


def with_origin(text: str, origin: str) -> str:
    """A rotation's new session (JSON) with its metadata naming the id it came from, so
    that a logout ends that id too, should the rotation have failed to retire it."""
    data = _json.loads(text)
    meta = None if data is None else data.get(META_KEY)
    if data is None or not isinstance(meta, dict):
        return text  # no metadata to carry it (a store used without the middleware)
    data[META_KEY] = {**meta, ORIGIN: origin}
    return _json.dumps(data)


def origin_of(text: str) -> str | None:
    """The id a session's JSON says it was rotated from, if any."""
    data = _json.loads(text)
    meta = None if data is None else data.get(META_KEY)
    origin = meta.get(ORIGIN) if isinstance(meta, dict) else None
    return origin if isinstance(origin, str) else None


def owner_in(meta: object) -> str | None:
    """The owner a session's metadata (the ``META_KEY`` value, as a dict) names, if any."""
    owner = meta.get(OWNER) if isinstance(meta, dict) else None
    return owner if isinstance(owner, str) and owner else None


def owner_of_data(data: Mapping[str, Any]) -> str | None:
    """The owner of a session about to be saved whole."""
    return owner_in(data.get(META_KEY))


def owner_of_changes(changes: Changes) -> str | None:
    """The owner of the session a rotation creates: the request's metadata names it (a
    rotation's changes always carry the metadata the core wrote)."""
    return owner_in(changes.set.get(META_KEY))


def session_info(
    store_key: str, text: str | bytes, expires_at: datetime, last_seen: datetime
) -> SessionInfo:
    """What ``sessions_of`` lists for the session stored under ``store_key`` as ``text``
    (its JSON), with the store's expiry and the instant it was last seen."""
    data = _json.loads(text)
    meta = data.get(META_KEY) if isinstance(data, dict) else None
    if not isinstance(meta, dict):
        meta = {}
    created = meta.get("c")
    device = meta.get(DEVICE)
    return SessionInfo(
        handle=handle_of(store_key),
        created_at=datetime.fromtimestamp(created, tz=expires_at.tzinfo)
        if isinstance(created, (int, float)) and not isinstance(created, bool)
        else last_seen,
        last_seen=last_seen,
        expires_at=expires_at,
        device=device if isinstance(device, str) else None,
    )


def most_recent_first(infos: list[SessionInfo]) -> list[SessionInfo]:
    """The order ``sessions_of`` lists in: the most recently seen first (then by handle,
    so that the order is stable)."""
    return sorted(infos, key=lambda info: (-info.last_seen.timestamp(), info.handle))


def byte_size(text: str | bytes) -> int:
    """Bytes of UTF-8 in ``text``."""
    if isinstance(text, bytes):
        return len(text)
    return len(text) if text.isascii() else len(text.encode("utf-8"))


class StoreErrors:
    """``with StoreErrors("loading a session", (DriverError, ...)):`` raises the back end's
    own errors as :class:`~lazysession.StoreError`, naming what failed. (A class rather
    than a generator-based context manager: it wraps every store call.)

    The message keeps the action, the error's type (and the driver's, under SQLAlchemy's)
    and the driver's error code where it has one (SQLSTATE, a MySQL or SQLite error, a
    Redis error word, an errno), never the driver's text: SQLAlchemy's carries the
    statement's parameters, which are session data and hashed ids, and database messages
    quote values too. The driver's error is not chained (``from None``), so a traceback
    does not print it either."""

    __slots__ = ("action", "errors")

    def __init__(self, action: str, errors: tuple[type[BaseException], ...]) -> None:
        self.action = action
        self.errors = errors

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        if error is not None and isinstance(error, self.errors):
            raise StoreError(f"{self.action} failed: {describe_error(error)}") from None


_ERROR_WORD = re.compile(r"[A-Z][A-Z_]{1,31}")


def describe_error(error: BaseException) -> str:
    """``error``'s type, its driver's type and its code: what an operator needs to look a
    failure up, and nothing the statement carried."""
    kind = type(error).__name__
    driver = getattr(error, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's
    if isinstance(driver, BaseException):
        if type(driver).__name__ != kind:
            kind = f"{kind} ({type(driver).__name__})"
    else:
        driver = error
    code = _error_code(driver)
    return kind if code is None else f"{kind}, {code}"


def _error_code(error: BaseException) -> str | None:
    codes = []
    for name in ("sqlstate", "pgcode"):  # psycopg, pymysql, asyncpg (SQLAlchemy's), psycopg2
        state = getattr(error, name, None)
        if isinstance(state, str) and len(state) == 5 and state.isalnum():
            codes.append(f"SQLSTATE {state}")
            break
    first = error.args[0] if error.args else None
    sqlite = getattr(error, "sqlite_errorname", None)
    if isinstance(sqlite, str) and _ERROR_WORD.fullmatch(sqlite):
        codes.append(sqlite)
    elif isinstance(error, OSError) and error.errno:
        codes.append(errno.errorcode.get(error.errno, f"errno {error.errno}"))
    elif isinstance(first, int) and not isinstance(first, bool):  # MySQL and MariaDB drivers
        codes.append(f"error {first}")
    elif isinstance(first, str) and type(error).__module__.startswith("redis"):
        if first in _FIXED_REDIS_MESSAGES:
            codes.append(first)
        else:
            word = first.split(" ", 1)[0]  # a Redis error reply starts with its code
            if word in _REDIS_CODES:
                codes.append(word)
    return ", ".join(codes) or None


_REDIS_CODES = frozenset(
    [
        "ASK",
        "BUSY",
        "BUSYKEY",
        "CLUSTERDOWN",
        "CROSSSLOT",
        "EXECABORT",
        "LOADING",
        "MASTERDOWN",
        "MISCONF",
        "MOVED",
        "NOAUTH",
        "NOPERM",
        "NOPROTO",
        "NOREPLICAS",
        "NOSCRIPT",
        "NOTBUSY",
        "OOM",
        "READONLY",
        "TRYAGAIN",
        "UNBLOCKED",
        "WRONGPASS",
        "WRONGTYPE",
    ]
)
"""The error codes Redis starts its replies with (redis-py strips a plain ``ERR``)."""
_FIXED_REDIS_MESSAGES = frozenset(("DB index is out of range", "invalid DB index"))
"""Whole Redis error messages that carry nothing of a request, kept as they are."""


class SyncStore(abc.ABC):
    """The blocking side of a store, for WSGI servers and command-line tools."""

    @abc.abstractmethod
    def read(self, session_id: str) -> Record | None: ...

    def load(self, session_id: str) -> dict[str, Any] | None:
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
    def delete(self, session_id: str) -> None: ...

    @abc.abstractmethod
    def sweep(self) -> int: ...

    @abc.abstractmethod
    def count(self) -> int: ...

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

    @abc.abstractmethod
    async def read(self, session_id: str) -> Record | None: ...

    async def load(self, session_id: str) -> dict[str, Any] | None:
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

    @abc.abstractmethod
    async def delete(self, session_id: str) -> None: ...

    @abc.abstractmethod
    async def sweep(self) -> int: ...

    @abc.abstractmethod
    async def count(self) -> int: ...

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
