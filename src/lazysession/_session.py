"""The session a handler sees: a dict that remembers what the request did to it.

Rules:
- Reading marks the session *accessed* (it then varies by cookie); writing marks it
  *modified*. Only a modified session is ever written back.
- Besides the flag, the session records which keys were set or removed, so a store can
  merge this request's changes onto the latest stored copy instead of overwriting it.
- Mutating a value in place (``session["cart"].append(x)``) is invisible, as in
  Starlette and Django: assign the key again, or call ``mark_modified()``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from ._expiry import Meta, from_timestamp
from .stores._base import Changes

_UNSET: Any = object()
_NO_KEYS: frozenset[str] = frozenset()


class Session(dict[str, Any]):
    """``request.session``: a plain dict with change tracking."""

    # Class-level defaults instead of an __init__: a session nobody touches costs no more
    # to create than a dict, which matters on every request that never uses it.
    accessed: bool = False
    modified: bool = False
    _touched_keys: set[str] | None = None
    _removed: set[str] | None = None
    _cleared: bool = False
    # Lifecycle, set by the core on load and by the methods below.
    _meta: Meta | None = None
    _lifetime: Any = _UNSET
    _pinned: bool | None = None
    _regenerate: bool = False
    _invalidated: bool = False
    cookie_keys: frozenset[str] = frozenset()
    """Keys whose change alters the cookie itself (Flask's ``_permanent``), so that a
    write of one of them re-sends it."""

    # -- lifecycle -------------------------------------------------------------------------

    def regenerate(self) -> None:
        """Give the session a new id and delete the old one, keeping the data: call it
        at login, so an id an attacker planted before login is worth nothing after it."""
        self._regenerate = True
        self.accessed = True
        self.modified = True

    def invalidate(self) -> None:
        """End the session: delete it from the store and expire its cookie (logout).
        Anything written afterwards in the same request starts a new session."""
        dict.clear(self)
        self._invalidated = True
        self._regenerate = False
        self.accessed = True
        self.modified = True
        self._cleared = True
        self._touched_keys = None
        self._removed = None
        self._lifetime = _UNSET
        self._pinned = None
        self._meta = None

    def set_lifetime(self, lifetime: int | timedelta | None) -> None:
        """This session's own absolute lifetime, from its creation ("remember me");
        ``None`` returns to the middleware's ``max_age``."""
        if isinstance(lifetime, timedelta):
            lifetime = int(lifetime.total_seconds())
        if lifetime is not None and lifetime <= 0:
            raise ValueError("a session lifetime must be positive, or None")
        self._lifetime = lifetime
        self.accessed = True
        self.modified = True

    def pin(self, pinned: bool = True) -> None:
        """Exempt the session from the idle timeout (not from its absolute lifetime)."""
        self._pinned = pinned
        self.accessed = True
        self.modified = True

    @property
    def created_at(self) -> datetime | None:
        """When the session was first stored, to the second; None while it is new."""
        return None if self._meta is None else from_timestamp(self._meta.created)

    def meta_for_write(self, now: float) -> Meta:
        """The metadata to store with this write, with this request's changes applied.
        A new session's creation is kept to the whole second (shorter to store and parse)."""
        if self._meta is None or self._regenerate:
            meta = Meta(created=math.floor(now))
        else:
            meta = self._meta
        if self._lifetime is not _UNSET:
            meta = meta.with_lifetime(self._lifetime)
        if self._pinned is not None:
            meta = meta.with_pinned(self._pinned)
        return meta

    # -- flags, as in Starlette's Session --------------------------------------------------

    def mark_accessed(self) -> None:
        self.accessed = True

    def mark_modified(self) -> None:
        """Flag the whole session for writing, e.g. after changing a value in place."""
        self.accessed = True
        self.modified = True
        self._touch(self.keys())

    def changes(
        self,
        *,
        also: Mapping[str, Any] | None = None,
        replace: bool = False,
        whole: str | None = None,
        base: object = None,
        max_size: int | None = None,
    ) -> Changes:
        """This request's changes, for a store that merges them onto its latest copy;
        ``also`` adds keys set by the core (the session's metadata)."""
        touched = self._touched_keys or ()
        changed = {k: self[k] for k in touched if k in self}
        if also:
            changed.update(also)
        removed = frozenset(self._removed) if self._removed else _NO_KEYS
        return Changes(changed, removed, replace or self._cleared, whole, base, not self, max_size)

    def cookie_changed(self) -> bool:
        """Whether this request wrote a key that alters the cookie (``cookie_keys``)."""
        keys = self._touched_keys
        return bool(self.cookie_keys and keys and not self.cookie_keys.isdisjoint(keys))

    # -- internals -------------------------------------------------------------------------

    def _touch(self, keys: Iterable[str]) -> None:
        self.accessed = True
        self.modified = True
        if self._touched_keys is None:
            self._touched_keys = set()
        for key in keys:
            self._touched_keys.add(key)
            if self._removed:
                self._removed.discard(key)

    def _remove(self, key: str) -> None:
        self.accessed = True
        self.modified = True
        if self._touched_keys:
            self._touched_keys.discard(key)
        if self._removed is None:
            self._removed = set()
        self._removed.add(key)

    # -- dict methods that change the session ----------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._touch((key,))

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._remove(key)

    def clear(self) -> None:
        super().clear()
        self.accessed = True
        self.modified = True
        self._cleared = True
        self._touched_keys = None
        self._removed = None

    def pop(self, key: str, *default: Any) -> Any:
        present = key in self
        value = super().pop(key, *default)
        if present:
            self._remove(key)
        return value

    def popitem(self) -> tuple[str, Any]:
        item = super().popitem()
        self._remove(item[0])
        return item

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key in self:
            return self[key]
        self[key] = default
        return default

    def update(self, *args: Any, **kwargs: Any) -> None:
        incoming = dict(*args, **kwargs)
        super().update(incoming)
        self._touch(incoming.keys())  # an empty update still counts, as in Starlette

    def __ior__(self, other: Any) -> Session:  # type: ignore[override,misc]
        self.update(other)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"


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
    regenerate = invalidate = set_lifetime = pin = _unavailable
