"""Expiry arithmetic: aware UTC in, aware UTC out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lazysession._expiry import expiry_after, is_expired

aware = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30))]),
)


@given(aware, st.integers(min_value=1, max_value=10 * 365 * 24 * 3600))
def test_a_session_is_live_until_its_lifetime_has_passed(now: datetime, seconds: int) -> None:
    expires_at = expiry_after(now, seconds)
    assert expires_at.tzinfo == timezone.utc
    assert not is_expired(expires_at, now)
    assert not is_expired(expires_at, now + timedelta(seconds=seconds - 1))
    assert is_expired(expires_at, now + timedelta(seconds=seconds))


@given(aware, aware)
def test_expiry_compares_instants_not_wall_clocks(a: datetime, b: datetime) -> None:
    assert is_expired(a, b) == (a.astimezone(timezone.utc) <= b.astimezone(timezone.utc))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        expiry_after(datetime(2026, 1, 1), 60)
