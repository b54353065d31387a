"""Lifetimes, touches, regeneration, invalidation, key rotation and size limits, decided
by the core without I/O."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lazysession import CookieSettings, CookieStore, MemoryStore, SessionTooLarge
from lazysession._core import SKIPPED, VARY_ONLY, Exchange, SessionRules
from lazysession._expiry import (
    META_KEY,
    Lifetimes,
    Meta,
    expires,
    hard_expiry,
    needs_touch,
)
from lazysession._signing import IdSigner, SecretKeys, store_key
from lazysession.stores import Record

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
SECRET = "s" * 32


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def persist(request: object) -> bool:
    return False


def skip(request: object) -> bool:
    return True


def make_rules(
    clock: Clock,
    *,
    max_age: int = 3600,
    idle: int | None = None,
    secret: object = SECRET,
    server_side: bool = True,
    max_size: int = 64 * 1024,
) -> SessionRules:
    return SessionRules(
        secret_key=secret,
        cookie=CookieSettings(max_age=max_age),
        store=MemoryStore() if server_side else CookieStore(),
        clock=clock,
        lifetimes=Lifetimes(absolute=max_age, idle=idle),
        max_size=max_size,
    )


def cookie_of(set_cookie: str | None) -> str:
    assert set_cookie is not None
    return set_cookie.split(";")[0]


def max_age_of(set_cookie: str | None) -> int:
    assert set_cookie is not None
    return int(set_cookie.split("Max-Age=")[1].split(";")[0])


def new_session(rules: SessionRules, **data: object) -> tuple[str, Record]:
    """Write a session through the rules; return its cookie and what the store got."""
    exchange = rules.begin(None)
    assert exchange.session is not None
    exchange.session.update(data)
    outcome = exchange.finish(200, persist, None)
    assert outcome.write is not None
    return cookie_of(outcome.set_cookie), Record(outcome.write.data, outcome.write.expires_at)


def reopen(rules: SessionRules, cookie: str, stored: Record) -> Exchange:
    exchange = rules.begin(cookie)
    exchange.loaded(stored)
    return exchange


# -- absolute and idle lifetimes -----------------------------------------------------------


def test_max_age_is_counted_from_creation_and_never_extended_by_writes() -> None:
    clock = Clock()
    rules = make_rules(clock, max_age=60)
    cookie, stored = new_session(rules, n=1)
    clock.advance(50)
    exchange = reopen(rules, cookie, stored)
    assert exchange.session is not None
    exchange.session["n"] = 2
    outcome = exchange.finish(200, persist, None)
    assert outcome.write is not None
    assert outcome.write.expires_at == T0 + timedelta(seconds=60)
    assert outcome.set_cookie is None  # the browser's cookie already ends then


def test_a_new_lifetime_re_sends_the_cookie_with_its_max_age() -> None:
    clock = Clock()
    rules = make_rules(clock, max_age=60)
    cookie, stored = new_session(rules, n=1)
    clock.advance(50)
    exchange = reopen(rules, cookie, stored)
    assert exchange.session is not None
    exchange.session.set_lifetime(120)
    outcome = exchange.finish(200, persist, None)
    assert max_age_of(outcome.set_cookie) == 70


def test_an_idle_timeout_expires_a_session_that_is_not_used() -> None:
    clock = Clock()
    rules = make_rules(clock, max_age=3600, idle=300)
    _, stored = new_session(rules, n=1)
    assert stored.expires_at == T0 + timedelta(seconds=300)


def test_a_session_past_its_absolute_lifetime_is_not_adopted() -> None:
    clock = Clock()
    rules = make_rules(clock, max_age=60)
    cookie, stored = new_session(rules, n=1)
    clock.advance(61)
    assert reopen(rules, cookie, Record(stored.data, T0 + timedelta(days=1))).session == {}


def test_a_read_before_the_touch_threshold_writes_nothing() -> None:
    clock = Clock()
    rules = make_rules(clock, idle=300)
    cookie, stored = new_session(rules, n=1)
    clock.advance(100)
    exchange = reopen(rules, cookie, stored)
    assert exchange.session is not None
    exchange.session.mark_accessed()
    assert exchange.finish(200, persist, None) is VARY_ONLY


def test_a_read_past_the_threshold_touches_without_rewriting_the_data() -> None:
    clock = Clock()
    rules = make_rules(clock, idle=300)
    cookie, stored = new_session(rules, n=1)
    clock.advance(200)
    exchange = reopen(rules, cookie, stored)
    assert exchange.session is not None
    exchange.session.mark_accessed()
    outcome = exchange.finish(200, persist, None)
    assert outcome.write is None
    assert outcome.touch is not None
    assert outcome.touch.expires_at == clock.now + timedelta(seconds=300)
    assert cookie_of(outcome.set_cookie) == cookie  # same id, same signature
    assert max_age_of(outcome.set_cookie) == 300


def test_a_skipped_request_never_touches() -> None:
    clock = Clock()
    rules = make_rules(clock, idle=300)
    cookie, stored = new_session(rules, n=1)
    clock.advance(200)
    exchange = reopen(rules, cookie, stored)
    assert exchange.session is not None
    exchange.session.mark_accessed()
    assert exchange.finish(200, skip, None) == SKIPPED


def test_a_pinned_session_ignores_the_idle_timeout_but_not_max_age() -> None:
    clock = Clock()
    rules = make_rules(clock, max_age=3600, idle=300)
    exchange = rules.begin(None)
    assert exchange.session is not None
    exchange.session["n"] = 1
    exchange.session.pin()
    outcome = exchange.finish(200, persist, None)
    assert outcome.write is not None
    assert outcome.write.expires_at == T0 + timedelta(seconds=3600)
    assert outcome.write.data[META_KEY] == {"c": T0.timestamp(), "p": True}


def test_set_lifetime_overrides_max_age_for_this_session_and_is_stored() -> None:
    clock = Clock()
    rules = make_rules(clock, max_age=3600)
    exchange = rules.begin(None)
    assert exchange.session is not None
    exchange.session["user"] = "ada"
    exchange.session.set_lifetime(timedelta(days=30))
    outcome = exchange.finish(200, persist, None)
    assert outcome.write is not None
    assert outcome.write.expires_at == T0 + timedelta(days=30)
    stored = Record(outcome.write.data, outcome.write.expires_at)
    clock.advance(7200)
    reopened = reopen(rules, cookie_of(outcome.set_cookie), stored)
    assert reopened.session == {"user": "ada"}  # metadata stays out of the handler's view


def test_a_session_of_the_cookie_store_expires_when_idle() -> None:
    clock = Clock()
    rules = make_rules(clock, idle=300, server_side=False)
    exchange = rules.begin(None)
    assert exchange.session is not None
    exchange.session["n"] = 1
    cookie = cookie_of(exchange.finish(200, persist, None).set_cookie)
    clock.advance(299)
    assert rules.begin(cookie).session == {"n": 1}
    clock.advance(2)
    assert rules.begin(cookie).session == {}


def test_the_cookie_store_touches_by_re_signing_the_cookie() -> None:
    clock = Clock()
    rules = make_rules(clock, idle=300, server_side=False)
    exchange = rules.begin(None)
    assert exchange.session is not None
    exchange.session["n"] = 1
    cookie = cookie_of(exchange.finish(200, persist, None).set_cookie)
    clock.advance(200)
    reader = rules.begin(cookie)
    assert reader.session is not None
    reader.session.mark_accessed()
    touched = cookie_of(reader.finish(200, persist, None).set_cookie)
    clock.advance(200)  # 400 s after the write, 200 s after the touch
    assert rules.begin(touched).session == {"n": 1}


# -- identity ------------------------------------------------------------------------------


def test_regenerate_moves_the_data_to_a_new_id_and_deletes_the_old() -> None:
    clock = Clock()
    rules = make_rules(clock)
    cookie, stored = new_session(rules, cart=[1])
    verified = IdSigner(SecretKeys(SECRET)).verify(cookie.split("=", 1)[1])
    assert verified is not None
    old_key = store_key(verified[0])
    exchange = reopen(rules, cookie, stored)
    assert exchange.session is not None
    exchange.session.regenerate()
    outcome = exchange.finish(200, persist, None)
    assert outcome.delete is None and outcome.write is None
    assert outcome.rotate is not None
    assert outcome.rotate.old_id == old_key
    assert outcome.rotate.session_id != old_key
    assert not outcome.rotate.changes.replace  # merged onto the latest stored copy
    assert cookie_of(outcome.set_cookie) != cookie


def test_invalidate_deletes_the_session_and_expires_the_cookie() -> None:
    clock = Clock()
    rules = make_rules(clock)
    cookie, stored = new_session(rules, user="ada")
    exchange = reopen(rules, cookie, stored)
    assert exchange.session is not None
    exchange.session.invalidate()
    outcome = exchange.finish(200, persist, None)
    assert outcome.delete is not None
    assert outcome.write is None
    assert outcome.set_cookie is not None and "Max-Age=0" in outcome.set_cookie


def test_a_write_after_invalidate_starts_a_new_session() -> None:
    clock = Clock()
    rules = make_rules(clock)
    cookie, stored = new_session(rules, user="ada")
    exchange = reopen(rules, cookie, stored)
    assert exchange.session is not None
    exchange.session.invalidate()
    exchange.session["flash"] = "logged out"
    outcome = exchange.finish(200, persist, None)
    assert outcome.delete is not None and outcome.write is not None
    assert outcome.write.session_id != outcome.delete
    assert {k: v for k, v in outcome.write.data.items() if k != META_KEY} == {"flash": "logged out"}


def test_a_cookie_signed_with_a_retired_key_is_re_signed_on_the_next_write() -> None:
    clock = Clock()
    old_rules = make_rules(clock, secret="old" * 11)
    cookie, stored = new_session(old_rules, n=1)
    rotated = make_rules(clock, secret=["new" * 11, "old" * 11])
    exchange = reopen(rotated, cookie, stored)
    assert exchange.session == {"n": 1}
    exchange.session["n"] = 2
    fresh = cookie_of(exchange.finish(200, persist, None).set_cookie)
    assert fresh != cookie
    verified = IdSigner(SecretKeys("new" * 11)).verify(fresh.split("=", 1)[1])
    assert verified is not None  # the new cookie needs only the current key
    assert make_rules(clock, secret="new" * 11).begin(fresh).load_key == store_key(verified[0])
    assert make_rules(clock, secret="new" * 11).begin(cookie).load_key is None


# -- what is refused -----------------------------------------------------------------------


def test_a_session_over_max_size_is_refused_before_any_store_io() -> None:
    rules = make_rules(Clock(), max_size=1024)
    exchange = rules.begin(None)
    assert exchange.session is not None
    exchange.session["blob"] = "x" * 2000
    with pytest.raises(SessionTooLarge, match="1024"):
        exchange.finish(200, persist, None)


# -- properties of the arithmetic ----------------------------------------------------------

seconds = st.integers(min_value=1, max_value=400 * 24 * 3600)


@given(
    seconds,
    st.none() | seconds,
    st.booleans(),
    st.none() | seconds,
    st.integers(min_value=0, max_value=800 * 24 * 3600),
)
def test_expiry_never_passes_the_absolute_cap(
    absolute: int, idle: int | None, pinned: bool, own: int | None, elapsed: int
) -> None:
    lifetimes = Lifetimes(absolute=absolute, idle=idle)
    meta = Meta(created=T0.timestamp(), lifetime=own, pinned=pinned)
    now = T0.timestamp() + elapsed
    expiry = expires(meta, now, lifetimes)
    assert expiry <= hard_expiry(meta, lifetimes)
    if pinned or idle is None:
        assert expiry == hard_expiry(meta, lifetimes)
    else:
        assert expiry <= now + idle


@given(
    seconds,
    st.integers(min_value=1, max_value=86400),
    st.floats(min_value=0.05, max_value=1.0),
    st.lists(st.integers(1, 600), max_size=300),
)
def test_reads_cost_a_bounded_number_of_touches_and_never_shorten_a_session(
    absolute: int, idle: int, touch_after: float, gaps: list[int]
) -> None:
    lifetimes = Lifetimes(absolute=absolute, idle=idle, touch_after=touch_after)
    meta = Meta(created=T0.timestamp())
    now = T0.timestamp()
    stored = expires(meta, now, lifetimes)
    touches = 0
    for gap in gaps:
        now += gap
        if stored <= now:
            break  # expired between reads: nothing left to touch
        if needs_touch(stored, meta, now, lifetimes):
            new = expires(meta, now, lifetimes)
            assert new > stored
            stored = new
            touches += 1
    elapsed = now - T0.timestamp()
    assert touches <= elapsed / (touch_after * idle) + 1
