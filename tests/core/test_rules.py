"""The core's decisions for one request, without any I/O."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lazysession import (
    CookieSettings,
    CookieStore,
    MemoryStore,
    SessionNotSerializable,
    SessionTooLarge,
)
from lazysession._core import NOTHING, SKIPPED, VARY_ONLY, SessionRules
from lazysession._expiry import DEFAULT_LIFETIME, META_KEY
from lazysession._signing import IdSigner, SecretKeys, new_session_id, store_key
from lazysession.stores import Record

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
SECRET = "s" * 32


def rules(server_side: bool = True, **cookie: object) -> SessionRules:
    store = MemoryStore() if server_side else CookieStore()
    settings = CookieSettings(**cookie)  # type: ignore[arg-type]
    return SessionRules(secret_key=SECRET, cookie=settings, store=store, clock=lambda: NOW)


def persist(skip: bool = False) -> Callable[[object], bool]:
    return lambda request: skip


def must_not_run(request: object) -> bool:
    raise AssertionError("skip_persistence was consulted for a request with nothing to save")


def record(data: dict[str, object], seconds: int = 3600) -> Record:
    return Record(dict(data), NOW + timedelta(seconds=seconds))


def user_data(stored: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in stored.items() if k != META_KEY}


def signed_cookie(session_id: str) -> str:
    return "session=" + IdSigner(SecretKeys(SECRET)).sign(session_id)


# -- requests without a cookie -------------------------------------------------------------


def test_a_request_without_a_cookie_has_nothing_to_load() -> None:
    exchange = rules().begin(None)
    assert exchange.load_key is None
    assert exchange.session == {}


def test_an_untouched_session_leaves_nothing_to_do() -> None:
    exchange = rules().begin(None)
    assert exchange.finish(200, must_not_run, None) is NOTHING


def test_a_session_only_read_sends_vary_and_writes_nothing() -> None:
    exchange = rules().begin(None)
    assert exchange.session is not None
    exchange.session.mark_accessed()
    assert exchange.finish(200, must_not_run, None) is VARY_ONLY


def test_the_first_write_mints_an_id_and_stores_under_its_hash() -> None:
    exchange = rules().begin(None)
    assert exchange.session is not None
    exchange.session["user"] = "ada"
    outcome = exchange.finish(200, persist(), None)
    assert outcome.write is not None
    assert user_data(outcome.write.data) == {"user": "ada"}
    assert outcome.set_cookie is not None and outcome.vary
    verified = IdSigner(SecretKeys(SECRET)).verify(outcome.set_cookie.split(";")[0][8:])
    assert verified is not None
    assert outcome.write.session_id == store_key(verified[0])


def test_a_write_expires_max_age_after_now() -> None:
    exchange = rules(max_age=3600).begin(None)
    assert exchange.session is not None
    exchange.session["a"] = 1
    outcome = exchange.finish(200, persist(), None)
    assert outcome.write is not None
    assert outcome.write.expires_at == NOW + timedelta(seconds=3600)


def test_a_browser_session_cookie_still_expires_server_side() -> None:
    exchange = rules(max_age=None).begin(None)
    assert exchange.session is not None
    exchange.session["a"] = 1
    outcome = exchange.finish(200, persist(), None)
    assert outcome.write is not None and outcome.set_cookie is not None
    assert outcome.write.expires_at == NOW + timedelta(seconds=DEFAULT_LIFETIME)
    assert "Max-Age" not in outcome.set_cookie


def test_skip_persistence_drops_the_write_and_the_cookie() -> None:
    exchange = rules().begin(None)
    assert exchange.session is not None
    exchange.session["a"] = 1
    assert exchange.finish(200, persist(skip=True), None) == SKIPPED


def test_a_server_error_persists_nothing() -> None:
    exchange = rules().begin(None)
    assert exchange.session is not None
    exchange.session["a"] = 1
    assert exchange.finish(500, persist(), None) is VARY_ONLY


def test_a_session_emptied_without_a_cookie_needs_no_cookie() -> None:
    exchange = rules().begin(None)
    assert exchange.session is not None
    exchange.session["a"] = 1
    del exchange.session["a"]
    assert exchange.finish(200, persist(), None) == VARY_ONLY


# -- requests with a cookie ----------------------------------------------------------------


def test_a_signed_id_is_loaded_by_its_hash() -> None:
    session_id = new_session_id()
    exchange = rules().begin(signed_cookie(session_id))
    assert exchange.load_key == store_key(session_id)
    assert exchange.session is None


def test_a_known_session_is_saved_under_the_same_key() -> None:
    session_id = new_session_id()
    exchange = rules().begin(signed_cookie(session_id))
    exchange.loaded(record({"n": 1}))["n"] = 2
    outcome = exchange.finish(200, persist(), None)
    assert outcome.write is not None
    assert outcome.write.session_id == store_key(session_id)
    assert user_data(outcome.write.data) == {"n": 2}


def test_an_id_the_store_does_not_know_is_never_adopted() -> None:
    session_id = new_session_id()
    exchange = rules().begin(signed_cookie(session_id))
    session = exchange.loaded(None)
    assert session == {}
    session["a"] = 1
    outcome = exchange.finish(200, persist(), None)
    assert outcome.write is not None
    assert outcome.write.session_id != store_key(session_id)


def test_an_emptied_session_is_deleted_and_its_cookie_expired() -> None:
    session_id = new_session_id()
    exchange = rules().begin(signed_cookie(session_id))
    exchange.loaded(record({"a": 1})).clear()
    outcome = exchange.finish(200, persist(), None)
    assert outcome.delete == store_key(session_id)
    assert outcome.write is None
    assert outcome.set_cookie is not None and "Max-Age=0" in outcome.set_cookie


def test_emptying_the_session_of_an_unknown_id_expires_the_stale_cookie() -> None:
    exchange = rules().begin(signed_cookie(new_session_id()))
    exchange.loaded(None).clear()
    outcome = exchange.finish(200, persist(), None)
    assert outcome.delete is None
    assert outcome.set_cookie is not None and "Max-Age=0" in outcome.set_cookie


def test_a_skipped_request_still_reads_its_cookies_session() -> None:
    session_id = new_session_id()
    exchange = rules().begin(signed_cookie(session_id))
    exchange.loaded(record({"user": "ada"})).clear()
    assert exchange.finish(200, persist(skip=True), None) == SKIPPED


def test_the_first_validly_signed_cookie_of_a_name_wins() -> None:
    session_id = new_session_id()
    header = f"session=forged; {signed_cookie(session_id)}; {signed_cookie(new_session_id())}"
    assert rules().begin(header).load_key == store_key(session_id)


@given(st.text(max_size=5000))
def test_a_cookie_header_of_any_text_gives_an_empty_session_and_no_load(header: str) -> None:
    exchange = rules().begin(header)
    assert exchange.load_key is None
    assert exchange.session == {}


@given(st.binary(max_size=5000))
def test_non_utf8_cookie_bytes_give_an_empty_session(raw: bytes) -> None:
    exchange = rules(server_side=False).begin(raw.decode("latin-1"))
    assert exchange.load_key is None
    assert exchange.session == {}


# -- the session in the cookie (store=None) ------------------------------------------------


def test_cookie_mode_round_trips_the_data_through_the_cookie() -> None:
    writer = rules(server_side=False).begin(None)
    assert writer.session is not None
    writer.session["cart"] = [1, 2]
    outcome = writer.finish(200, persist(), None)
    assert outcome.set_cookie is not None and outcome.write is None
    reader = rules(server_side=False).begin(outcome.set_cookie.split(";")[0])
    assert reader.load_key is None
    assert reader.session == {"cart": [1, 2]}


def test_cookie_mode_refuses_a_session_past_the_browser_limit() -> None:
    exchange = rules(server_side=False).begin(None)
    assert exchange.session is not None
    exchange.session["blob"] = "x" * 4000
    with pytest.raises(SessionTooLarge, match="4096"):
        exchange.finish(200, persist(), None)


def test_a_value_that_is_not_json_fails_naming_its_key() -> None:
    exchange = rules(server_side=False).begin(None)
    assert exchange.session is not None
    exchange.session["when"] = NOW
    with pytest.raises(SessionNotSerializable, match="'when'"):
        exchange.finish(200, persist(), None)
