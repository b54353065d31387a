"""Expiry arithmetic, in timezone-aware UTC, with the clock passed in (testable, no sleep)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

Clock = Callable[[], datetime]

DEFAULT_LIFETIME = 14 * 24 * 60 * 60
"""Seconds a server-side session lives after its last write when ``max_age`` is None:
a browser-session cookie still needs a bound on the server."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def expiry_after(now: datetime, seconds: float) -> datetime:
    """The instant ``seconds`` after ``now``; ``now`` must be timezone-aware."""
    if now.tzinfo is None:
        raise ValueError("expiry arithmetic needs a timezone-aware datetime")
    return (now + timedelta(seconds=seconds)).astimezone(timezone.utc)


def is_expired(expires_at: datetime, now: datetime) -> bool:
    """A session is expired from the instant of its expiry on (that instant included)."""
    return expires_at <= now


def to_timestamp(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError("expected a timezone-aware datetime")
    return moment.timestamp()
