"""Expiry arithmetic: aware UTC in, aware UTC out, expired from the instant on."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lazysession._expiry import (
    Lifetimes,
    Meta,
    expires,
    from_timestamp,
    seconds_of,
    to_timestamp,
    utc_now,
)

aware = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30))]),
)


@given(aware, st.integers(min_value=1, max_value=10 * 365 * 24 * 3600))
def test_a_session_lasts_exactly_its_lifetime_in_utc(now: datetime, seconds: int) -> None:
    created = to_timestamp(now)
    expiry = from_timestamp(expires(Meta(created=created), created, Lifetimes(absolute=seconds)))
    assert expiry.tzinfo == timezone.utc
    # Instants are float seconds: exact to the microsecond (the float's grain near
    # 2100), which is finer than any cookie or database timestamp needs.
    assert abs(expiry - now - timedelta(seconds=seconds)) <= timedelta(microseconds=1)


@given(aware)
def test_timestamps_round_trip_to_the_same_instant(moment: datetime) -> None:
    back = from_timestamp(to_timestamp(moment))
    assert back.tzinfo == timezone.utc
    assert abs(back - moment) < timedelta(microseconds=2)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        to_timestamp(datetime(2026, 1, 1))


def test_the_real_clock_is_read_in_seconds_since_the_epoch() -> None:
    assert abs(seconds_of(utc_now)() - to_timestamp(utc_now())) < 0.5


@given(aware)
def test_a_given_clock_is_read_in_seconds_since_the_epoch(moment: datetime) -> None:
    assert seconds_of(lambda: moment)() == to_timestamp(moment)
