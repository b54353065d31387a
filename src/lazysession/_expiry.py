"""Expiry arithmetic, with the clock passed in (testable, no sleep).

Instants are float seconds since the epoch inside the core (a datetime costs several
times more to build and compare, on every request); stores are handed timezone-aware
UTC datetimes, converted once at that boundary.

Rules:
- A session has an absolute lifetime counted from its creation (``max_age``, or its own
  ``set_lifetime`` override) that use never extends.
- With an ``idle_timeout`` it also expires that long after its last use; a pinned session
  is exempt from the idle rule, never from the absolute one.
- It expires at the earlier of the two, from that instant on (the instant included).
- A read-only request moves the expiry ("touches") only once ``touch_after`` of the idle
  window has passed since the last write or touch, so reads cost a store write rarely.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from . import _defaults

Clock = Callable[[], datetime]
Seconds = Callable[[], float]

DEFAULT_LIFETIME = _defaults.LIFETIME
"""The absolute lifetime when ``max_age`` is None: a browser-session cookie still needs a
bound on the server."""

DEFAULT_TOUCH_AFTER = _defaults.TOUCH_AFTER

META_KEY = "__lazysession__"
"""Where a session's own metadata travels inside its stored data (hidden from handlers)."""
ORIGIN = "o"
"""The metadata field naming the store key a session was rotated from."""
OWNER = "u"
"""The metadata field naming the session's owner (``regenerate(owner=...)``); stores
index sessions by it."""
AUTHENTICATED = "a"
"""The metadata field holding when the owner last logged in (seconds since the epoch)."""
DEVICE = "d"
"""The metadata field holding the device label of the login request (``record_device``)."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def seconds_of(clock: Clock) -> Seconds:
    """The clock in seconds since the epoch: ``time.time`` itself for the real clock."""
    if clock is utc_now:
        return time.time
    return lambda: to_timestamp(clock())


def to_timestamp(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError("expected a timezone-aware datetime")
    return moment.timestamp()


def from_timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


@dataclass(frozen=True, slots=True)
class Lifetimes:
    """The middleware's expiry settings, in seconds. An ``absolute`` lifetime of 0 or
    less (Starlette's ``max_age=0``) ends every session at once."""

    absolute: int = DEFAULT_LIFETIME
    idle: int | None = None
    touch_after: float = DEFAULT_TOUCH_AFTER

    def __post_init__(self) -> None:
        if self.idle is not None and self.idle <= 0:
            raise ValueError("idle_timeout must be positive, or None")
        if not 0.0 <= self.touch_after <= 1.0:
            raise ValueError("touch_after is a fraction of the idle window, from 0 to 1")


@dataclass(slots=True)  # built per request: frozen ones cost twice as much
class Meta:
    """What a session knows about itself: when it began, its own absolute lifetime (if
    set), whether it is pinned (exempt from the idle timeout), and the store key it was
    rotated from (``origin``, set by the store at login, so that a logout ends that id
    too if the rotation could not retire it)."""

    created: float
    lifetime: int | None = None
    pinned: bool = False
    origin: str | None = None
    owner: str | None = None
    authenticated: float | None = None
    device: str | None = None
    mark: str | None = None
    """The cookie attributes' digest the session's cookie was last set under
    (``SessionRules.cookie_mark``), where the shell tracks them."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"c": self.created}
        if self.lifetime is not None:
            out["l"] = self.lifetime
        if self.pinned:
            out["p"] = True
        if self.origin is not None:
            out[ORIGIN] = self.origin
        if self.owner is not None:
            out[OWNER] = self.owner
            if self.authenticated is not None:
                out[AUTHENTICATED] = self.authenticated
            if self.device is not None:
                out[DEVICE] = self.device
        if self.mark is not None:
            out["k"] = self.mark
        return out

    @classmethod
    def from_json(cls, value: object, fallback_created: float) -> Meta:
        """Metadata as stored; anything malformed counts as a session begun at
        ``fallback_created`` with the default settings."""
        if not isinstance(value, dict) and not isinstance(value, Mapping):  # dict: no ABC
            return cls(fallback_created)
        created = value.get("c")
        if not isinstance(created, (int, float)):
            created = fallback_created
        if len(value) == 1:  # only the creation: the usual case
            return cls(float(created))
        lifetime = value.get("l")
        origin = value.get(ORIGIN)
        owner = value.get(OWNER)
        authenticated = value.get(AUTHENTICATED)
        device = value.get(DEVICE)
        mark = value.get("k")
        owned = isinstance(owner, str) and bool(owner)
        when = None
        if owned and isinstance(authenticated, (int, float)):
            when = None if isinstance(authenticated, bool) else float(authenticated)
        return cls(
            float(created),
            lifetime if isinstance(lifetime, int) and lifetime > 0 else None,
            value.get("p") is True,
            origin if isinstance(origin, str) else None,
            owner if owned else None,
            when,
            device if owned and isinstance(device, str) else None,
            mark if isinstance(mark, str) else None,
        )

    def with_lifetime(self, seconds: int | None) -> Meta:
        return replace(self, lifetime=seconds)

    def with_pinned(self, pinned: bool) -> Meta:
        return replace(self, pinned=pinned)


def hard_expiry(meta: Meta, lifetimes: Lifetimes) -> float:
    """The absolute end of a session, whatever its use."""
    lifetime = meta.lifetime if meta.lifetime is not None else lifetimes.absolute
    return meta.created + lifetime


def expires(meta: Meta, now: float, lifetimes: Lifetimes) -> float:
    """When a session used at ``now`` expires."""
    hard = hard_expiry(meta, lifetimes)
    if lifetimes.idle is None or meta.pinned:
        return hard
    return min(hard, now + lifetimes.idle)


def needs_touch(stored: float, meta: Meta, now: float, lifetimes: Lifetimes) -> bool:
    """Whether a read at ``now`` should move the stored expiry forward: only under an idle
    timeout, once ``touch_after`` of the window has passed, and when it would move."""
    if lifetimes.idle is None or meta.pinned:
        return False
    if stored - now > lifetimes.idle * (1.0 - lifetimes.touch_after):
        return False
    return expires(meta, now, lifetimes) > stored
