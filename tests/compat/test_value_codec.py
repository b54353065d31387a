"""The core's value codec (what Flask's tagged JSON hangs on): each top-level value is
decoded once when a session is loaded and encoded on every way it is written."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from lazysession import CookieSettings, CookieStore, MemoryStore
from lazysession._core import SessionRules
from lazysession._expiry import META_KEY
from lazysession._signing import IdSigner, SecretKeys, new_session_id
from lazysession.stores import Record

SECRET = "codec-secret-" + "x" * 24
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


class Boxes:
    """Encodes a value as ``{"box": value}``; counts each call."""

    def __init__(self) -> None:
        self.loads = 0

    def dump(self, value: Any) -> Any:
        return {"box": value}

    def load(self, value: Any) -> Any:
        self.loads += 1
        return value["box"]


def rules(codec: Boxes, *, server_side: bool = True) -> SessionRules:
    store = MemoryStore() if server_side else CookieStore()
    return SessionRules(
        secret_key=SECRET,
        cookie=CookieSettings(),
        store=store,
        clock=lambda: NOW,
        value_codec=codec,
    )


def loaded_exchange(codec: Boxes, data: dict[str, Any]) -> Any:
    session_id = new_session_id()
    cookie = "session=" + IdSigner(SecretKeys(SECRET)).sign(session_id)
    exchange = rules(codec).begin(cookie)
    exchange.loaded(Record({**data, META_KEY: {"c": NOW.timestamp()}}, NOW + timedelta(hours=1)))
    return exchange


def test_a_loaded_session_holds_decoded_values_decoded_once() -> None:
    codec = Boxes()
    exchange = loaded_exchange(codec, {"a": {"box": 1}, "b": {"box": [2]}})
    assert dict(exchange.session) == {"a": 1, "b": [2]}
    assert codec.loads == 2  # metadata is never handed to the codec


def test_a_new_session_is_written_encoded() -> None:
    codec = Boxes()
    exchange = rules(codec).exchange_for(session := rules(codec).session_class())
    session["a"] = (1, 2)
    outcome = exchange.finish(200, lambda request: False, None)
    assert outcome.write is not None
    assert outcome.write.data["a"] == {"box": (1, 2)}
    assert '"a":{"box":[1,2]}' in (outcome.write.changes.whole or "")


def test_the_changes_merged_onto_a_stored_session_are_encoded() -> None:
    codec = Boxes()
    exchange = loaded_exchange(codec, {"a": {"box": 1}})
    exchange.session["b"] = 2
    outcome = exchange.finish(200, lambda request: False, None)
    assert outcome.write is not None and outcome.write.merge
    assert outcome.write.changes.set["b"] == {"box": 2}
    assert "a" not in outcome.write.changes.set


def test_the_cookie_store_signs_encoded_values_and_decodes_them_on_the_way_back() -> None:
    codec = Boxes()
    cookie_rules = rules(codec, server_side=False)
    session = cookie_rules.session_class()
    exchange = cookie_rules.exchange_for(session)
    session["a"] = "x"
    outcome = exchange.finish(200, lambda request: False, None)
    assert outcome.set_cookie is not None
    value = outcome.set_cookie.split(";")[0].split("=", 1)[1]
    back = cookie_rules.begin(f"session={value}").session
    assert back is not None and dict(back) == {"a": "x"}
    assert codec.loads == 1
