"""The session a handler sees: a dict that remembers what the request did to it.

Rules:
- Reading marks the session *accessed* (it then varies by cookie); writing marks it
  *modified*. Only a modified session is ever written back.
- Besides the flag, the session records which keys were set or removed, so a store can
  merge this request's changes onto the latest stored copy instead of overwriting it.
- Mutating a value in place (``session["cart"].append(x)``) is invisible, as in
  Starlette and Django: assign the key again, or call ``mark_modified()``, or set
  ``session.modified = True`` (Flask's idiom): either records every key as changed, so
  the in-place change is written even by a store that merges key by key.
- The key ``"__lazysession__"`` (``RESERVED_KEY``) holds the session's metadata in the
  store: setting it raises :class:`~lazysession.SessionKeyReserved`, before any store I/O.
- A session has an *owner* only once a login names one (``regenerate(owner=...)``); the
  store then lists it among the owner's sessions. ``regenerate()`` without ``owner`` keeps
  the owner it has; ``invalidate()`` drops it with the rest.
- The core reads what the request did only through :func:`log_of` (a :class:`RequestLog`)
  and hands the session what it loaded only through :func:`adopt`; it builds the store's
  ``Changes`` itself. The session knows nothing of stores.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ._errors import SessionKeyReserved
from ._expiry import META_KEY, Meta, from_timestamp
from ._identity import handle_of

_UNSET: Any = object()
_NO_KEYS: frozenset[str] = frozenset()
RESERVED_KEY = META_KEY
"""The one key a handler may not set: the store keeps the session's metadata under it."""
OWNER_LIMIT = 255
"""The longest owner (characters): an id, not a profile."""


class Session(dict[str, Any]):
    """``request.session``: a plain dict with change tracking."""

    # Class-level defaults instead of an __init__: a session nobody touches costs no more
    # to create than a dict, which matters on every request that never uses it.
    accessed: bool = False
    _modified: bool = False
    _touched_keys: set[str] | None = None
    _removed: set[str] | None = None
    _cleared: bool = False
    # Lifecycle, set on load (``adopt``) and by the methods below.
    _meta: Meta | None = None
    _written: Meta | None = None
    """The metadata the core decided to store with this request's write."""
    _lifetime: Any = _UNSET
    _pinned: bool | None = None
    _regenerate: bool = False
    _invalidated: bool = False
    _owner: Any = _UNSET
    """The owner a login in this request named (``regenerate(owner=...)``)."""
    _logged_in_at: float | None = None
    _key: str | None = None
    """The store key the session was loaded from (``adopt``)."""
    cookie_keys: frozenset[str] = frozenset()
    """Keys whose change alters the cookie itself (Flask's ``_permanent``), so that a
    write of one of them re-sends it."""

    # -- lifecycle -------------------------------------------------------------------------

    def regenerate(self, owner: str | None = _UNSET) -> None:
        """Give the session a new id and delete the old one, keeping the data: call it
        at login, so an id an attacker planted before login is worth nothing after it.

        ``owner`` (a user id) records the session as that user's: the store lists it in
        ``store.sessions_of(owner)``, and ``authenticated_at`` becomes now. Without it
        the session keeps the owner it has."""
        if owner is not _UNSET:
            if owner is not None and (not isinstance(owner, str) or not owner):
                raise ValueError("a session's owner is a non-empty string, or None")
            if owner is not None and len(owner) > OWNER_LIMIT:
                raise ValueError(f"a session's owner is at most {OWNER_LIMIT} characters")
            self._owner = owner
            self._logged_in_at = time.time()
        self._regenerate = True
        self.accessed = True
        self._modified = True

    def invalidate(self) -> None:
        """End the session: delete it from the store and expire its cookie (logout).
        Anything written afterwards in the same request starts a new session."""
        dict.clear(self)
        self._invalidated = True
        self._regenerate = False
        self.accessed = True
        self._modified = True
        self._cleared = True
        self._touched_keys = None
        self._removed = None
        self._lifetime = _UNSET
        self._pinned = None
        self._meta = None
        self._owner = _UNSET
        self._logged_in_at = None

    def set_lifetime(self, lifetime: int | timedelta | None) -> None:
        """This session's own absolute lifetime, from its creation ("remember me");
        ``None`` returns to the middleware's ``max_age``."""
        if isinstance(lifetime, timedelta):
            lifetime = int(lifetime.total_seconds())
        if lifetime is not None and lifetime <= 0:
            raise ValueError("a session lifetime must be positive, or None")
        self._lifetime = lifetime
        self.accessed = True
        self._modified = True

    def pin(self, pinned: bool = True) -> None:
        """Exempt the session from the idle timeout (not from its absolute lifetime)."""
        self._pinned = pinned
        self.accessed = True
        self._modified = True

    @property
    def created_at(self) -> datetime | None:
        """When the session was first stored, to the second. A session this request
        creates (or regenerates) reports the instant it is stored with once the core has
        decided its write, at the response's start; before that, in the handler, a new
        session reports None and a regenerated one its old creation."""
        meta = self._written or self._meta
        return None if meta is None else from_timestamp(meta.created)

    @property
    def owner(self) -> str | None:
        """Whose session this is (``regenerate(owner=...)``); None for an anonymous one."""
        if self._owner is not _UNSET:
            owner: str | None = self._owner
            return owner
        return None if self._meta is None else self._meta.owner

    @property
    def authenticated_at(self) -> datetime | None:
        """When the owner last logged in (``regenerate(owner=...)``); None if never."""
        if self._owner is not _UNSET:
            at = None if self._owner is None else self._logged_in_at
        else:
            at = None if self._meta is None else self._meta.authenticated
        return None if at is None else from_timestamp(at)

    def auth_age(self) -> float | None:
        """Seconds since the owner last logged in; None if never (ask for the password
        again before a sensitive action when it is too old)."""
        at = self.authenticated_at
        return None if at is None else max(0.0, time.time() - at.timestamp())

    @property
    def handle(self) -> str | None:
        """A short, non-secret name of the stored session (safe in a page or a log: it
        grants nothing), as ``store.sessions_of`` lists it; None for a session not yet
        stored, one this request regenerates or ends, or a cookie-only session."""
        key = self._key
        if key is None or self._regenerate or self._invalidated:
            return None
        return handle_of(key)

    def meta_for_write(self, now: float, device: str | None = None) -> Meta:
        """The metadata to store with this write, with this request's changes applied.
        A new session's creation is kept to the whole second (shorter to store and parse).
        ``device``: the login request's device label, recorded with a new owner."""
        old = self._meta
        if old is None or self._regenerate:
            meta = Meta(created=math.floor(now))
            if self._owner is not _UNSET:
                if self._owner is not None:
                    meta.owner, meta.authenticated, meta.device = self._owner, now, device
            elif old is not None and old.owner is not None:  # a regeneration keeps the owner
                meta.owner, meta.authenticated, meta.device = (
                    old.owner,
                    old.authenticated,
                    old.device,
                )
        else:
            meta = old
        if self._lifetime is not _UNSET:
            meta = meta.with_lifetime(self._lifetime)
        if self._pinned is not None:
            meta = meta.with_pinned(self._pinned)
        self._written = meta
        return meta

    # -- flags, as in Starlette's Session --------------------------------------------------

    def mark_accessed(self) -> None:
        """Flag the session as read: its response varies by cookie (``Vary: Cookie``)."""
        self.accessed = True

    @property
    def modified(self) -> bool:
        """Whether the session is to be written back. Setting it True is
        ``mark_modified()`` (Flask's idiom after an in-place change): every key counts as
        changed. Setting it False drops the write, changes included."""
        return self._modified

    @modified.setter
    def modified(self, value: bool) -> None:
        if value:
            self.mark_modified()
        else:
            self._modified = False

    def mark_modified(self) -> None:
        """Flag the whole session for writing, e.g. after changing a value in place."""
        self._touch(self.keys())

    def cookie_changed(self) -> bool:
        """Whether this request wrote a key that alters the cookie (``cookie_keys``)."""
        keys = self._touched_keys
        return bool(self.cookie_keys and keys and not self.cookie_keys.isdisjoint(keys))

    # -- internals -------------------------------------------------------------------------

    def _touch(self, keys: Iterable[str]) -> None:
        self.accessed = True
        self._modified = True
        if self._touched_keys is None:
            self._touched_keys = set()
        for key in keys:
            self._touched_keys.add(key)
            if self._removed:
                self._removed.discard(key)

    def _remove(self, key: str) -> None:
        self.accessed = True
        self._modified = True
        if self._touched_keys:
            self._touched_keys.discard(key)
        if self._removed is None:
            self._removed = set()
        self._removed.add(key)

    # -- dict methods that change the session ----------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        """Set ``key``, a change to write; the reserved metadata key is refused."""
        if key == RESERVED_KEY:
            raise SessionKeyReserved(key)
        dict.__setitem__(self, key, value)
        self.accessed = True  # what _touch((key,)) does, for the one key: on every write
        self._modified = True
        touched = self._touched_keys
        if touched is None:
            touched = self._touched_keys = set()
        touched.add(key)
        if self._removed:
            self._removed.discard(key)

    def __delitem__(self, key: str) -> None:
        """Remove ``key``, a change to write."""
        super().__delitem__(key)
        self._remove(key)

    def clear(self) -> None:
        """Remove every key: the stored copy is replaced, or the session ended if left empty."""
        super().clear()
        self.accessed = True
        self._modified = True
        self._cleared = True
        self._touched_keys = None
        self._removed = None

    def pop(self, key: str, *default: Any) -> Any:
        """Remove ``key`` and return its value (or ``default``); a change when it was there."""
        present = key in self
        value = super().pop(key, *default)
        if present:
            self._remove(key)
        return value

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last key set, with its value: a change to write."""
        item = super().popitem()
        self._remove(item[0])
        return item

    def setdefault(self, key: str, default: Any = None) -> Any:
        """The value of ``key``; set to ``default`` (a change) only when absent."""
        if key in self:
            return self[key]
        self[key] = default
        return default

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Set every key given, as ``dict.update``; each is a change, even an empty update."""
        incoming = dict(*args, **kwargs)
        if RESERVED_KEY in incoming:
            raise SessionKeyReserved(RESERVED_KEY)
        super().update(incoming)
        self._touch(incoming.keys())  # an empty update still counts, as in Starlette

    def __ior__(self, other: Any) -> Session:  # type: ignore[override,misc]
        """``session |= other``: ``update(other)``."""
        self.update(other)
        return self

    def __repr__(self) -> str:
        """The class name and the keys and values, as a dict shows them."""
        return f"{type(self).__name__}({dict.__repr__(self)})"


@dataclass(slots=True)  # built per written request: frozen ones cost twice as much
class RequestLog:
    """What one request did to its session, as the core reads it (:func:`log_of`)."""

    set_keys: Iterable[str]
    """The keys set (or marked modified) and not removed since."""
    removed: frozenset[str]
    """The keys removed and not set again since."""
    cleared: bool
    """``clear()`` or ``invalidate()`` ran: the stored copy is replaced, not merged onto."""
    regenerate: bool
    """``regenerate()`` ran (and no ``invalidate()`` after it): the session moves to a new id."""
    invalidated: bool
    """``invalidate()`` ran: the session as loaded ends."""
    logs_in: bool
    """A ``regenerate(owner=...)`` named an owner."""
    lifetime_set: bool
    """``set_lifetime()`` ran."""
    meta: Meta | None
    """The metadata as loaded (None for a new session, or once ``invalidate()`` ran)."""
    cookie_changed: bool
    """A key in ``cookie_keys`` was written."""


def log_of(session: Session) -> RequestLog:
    """What the request did to ``session``, for the core to decide its write."""
    touched, removed, regenerate = session._touched_keys, session._removed, session._regenerate
    owner, cookie_keys = session._owner, session.cookie_keys
    return RequestLog(  # this runs on every write: cookie_changed() only where there are such keys
        touched or _NO_KEYS,
        frozenset(removed) if removed else _NO_KEYS,
        session._cleared,
        regenerate,
        session._invalidated,
        regenerate and owner is not _UNSET and owner is not None,
        session._lifetime is not _UNSET,
        session._meta,
        bool(cookie_keys) and session.cookie_changed(),
    )


def adopt(session: Session, meta: Meta, key: str | None) -> None:
    """Hand ``session`` the metadata it was stored with and, for a server-side session,
    the store ``key`` it was loaded from."""
    session._meta = meta
    session._key = key


class UnavailableSession(Session):
    """Stands in for a session the store could not load: any use raises
    :class:`~lazysession.SessionUnavailable` (the middleware turns it into a 503), while
    a request that never touches its session goes on unaffected."""

    def _unavailable(self, *args: Any, **kwargs: Any) -> Any:
        from ._errors import SessionUnavailable

        raise SessionUnavailable("the session store is unavailable")

    mark_accessed = mark_modified = _unavailable
    __getitem__ = __setitem__ = __delitem__ = __contains__ = __iter__ = __len__ = _unavailable
    get = keys = values = items = pop = popitem = setdefault = update = clear = _unavailable
    regenerate = invalidate = set_lifetime = pin = auth_age = _unavailable
