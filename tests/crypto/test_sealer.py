"""The rules of encrypted server-side sessions in the core, free of I/O: field names, key
rotation field by field, and what the core makes of stored data it did not write."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from lazysession import CookieSettings, MemoryStore, SessionNotSerializable, _json
from lazysession._core import Exchange, SessionRules
from lazysession._crypto import CIPHERS_CACHED, NONCE, Opened, ValueSealer, b64, subkey
from lazysession._expiry import META_KEY
from lazysession._signing import SecretKeys, new_session_id, store_key
from lazysession.stores import Record

OLD = "sealer-old-secret-" + "o" * 24
NEW = "sealer-new-secret-" + "n" * 24
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
KEY = store_key(new_session_id())


def sealer(*keys: str) -> ValueSealer:
    return ValueSealer(SecretKeys(list(keys)))


def sealed(with_sealer: ValueSealer, values: dict[str, Any], key: str = KEY) -> dict[str, Any]:
    return with_sealer.seal(values, {"c": NOW.timestamp()}, key, None)


def opened(with_sealer: ValueSealer, data: dict[str, Any], key: str = KEY) -> Any:
    record, how = with_sealer.open(Record(data, NOW + timedelta(hours=1)), key)
    return None if record is None else (record.data, how)


def test_a_field_is_named_by_the_key_never_showing_it() -> None:
    one = sealer(OLD)
    assert one.field("user") == one.field("user") == sealer(OLD).field("user")
    assert one.field("user") != one.field("User") != sealer(NEW).field("user")
    assert len(one.field("user")) == 22 and "user" not in one.field("user")
    assert one.field("user", 0) == one.field("user")


def test_the_metadata_stays_readable_and_the_values_do_not() -> None:
    data = sealed(sealer(OLD), {"user": "ada"})
    assert data[META_KEY]["c"] == NOW.timestamp()  # the store still reads its metadata
    assert "ada" not in _json.dumps(data) and "user" not in _json.dumps(data)


def test_values_under_a_retired_key_open_and_are_marked_for_rewriting() -> None:
    data = sealed(sealer(OLD), {"user": "ada", "role": "admin"})
    rotated = sealer(NEW, OLD)
    plain, how = opened(rotated, data)
    assert plain == {"user": "ada", "role": "admin", META_KEY: {"c": NOW.timestamp()}}
    assert how.stale == {"user": [sealer(OLD).field("user")], "role": [sealer(OLD).field("role")]}


def rules_for(*keys: str) -> SessionRules:
    return SessionRules(
        secret_key=list(keys),
        cookie=CookieSettings(),
        store=MemoryStore(),
        clock=lambda: NOW,
        encrypt=True,
    )


def test_writing_a_key_held_under_a_retired_key_drops_its_old_field() -> None:
    old, rotated = sealer(OLD), rules_for(NEW, OLD)
    session_id = new_session_id()
    key = store_key(session_id)
    data = old.seal({"user": "ada", "role": "admin"}, {"c": NOW.timestamp()}, key, None)
    exchange = Exchange(rotated, session_id, True, None, key)
    session = exchange.loaded(Record(data, NOW + timedelta(hours=1), version="v1"))
    session["role"] = "owner"
    outcome = exchange.finish(200, lambda request: False, None)
    write = outcome.write
    assert write is not None and write.merge
    new = sealer(NEW)
    assert set(write.changes.set) == {new.field("role"), META_KEY}
    assert write.changes.removed == {old.field("role")}  # "user" stays as it is, readable
    assert set(_json.loads(write.changes.whole or "") or {}) == {
        new.field("user"),
        new.field("role"),
        META_KEY,
    }  # stored whole when nothing came in between: every value under the new key


def test_removing_a_key_removes_its_field_under_every_key_it_was_held_by() -> None:
    old, rotated = sealer(OLD), rules_for(NEW, OLD)
    session_id = new_session_id()
    key = store_key(session_id)
    data = old.seal({"user": "ada", "flash": "hi"}, {"c": NOW.timestamp()}, key, None)
    exchange = Exchange(rotated, session_id, True, None, key)
    session = exchange.loaded(Record(data, NOW + timedelta(hours=1)))
    del session["flash"]
    write = exchange.finish(200, lambda request: False, None).write
    assert write is not None
    assert write.changes.removed == {old.field("flash"), sealer(NEW).field("flash")}


def test_a_key_held_twice_reads_as_its_newest_field() -> None:
    old, new, both = sealer(OLD), sealer(NEW), sealer(NEW, OLD)
    from_old = old.seal({"user": "stale"}, {"c": NOW.timestamp()}, KEY, None)
    loaded = old.open(Record(from_old, NOW), KEY)[1]
    assert loaded is not None
    from_new = new.seal({"user": "fresh"}, {"c": NOW.timestamp()}, KEY, Opened(loaded.binding))
    mixed = {**from_old, **from_new}  # two writers, each with its own key list
    assert len(mixed) == 3
    plain, how = opened(both, mixed)
    assert plain["user"] == "fresh"
    assert how.stale == {"user": [old.field("user")]}


@pytest.mark.parametrize(
    "bend",
    [
        "metadata that is not an object",
        "a NaN in the metadata",
        "a tag that is not ASCII",
        "a field name that is not ASCII",
        "a value that decrypts to two keys",
        "a value that decrypts to no JSON",
        "a value under the field of another key name",
    ],
)
def test_stored_data_we_did_not_write_reads_as_absent(bend: str) -> None:
    one = sealer(OLD)
    data = sealed(one, {"user": "ada"})
    meta, field = data[META_KEY], one.field("user")
    binding = one.open(Record(dict(data), NOW), KEY)[1]
    assert binding is not None
    aead = one._aead(subkey(one._values[0], binding.binding))

    def encrypted(plaintext: bytes, under: str) -> str:
        nonce = os.urandom(NONCE)
        return b64(nonce + aead.encrypt(nonce, plaintext, under.encode()))

    if bend == "metadata that is not an object":
        data[META_KEY] = [meta]
    elif bend == "a NaN in the metadata":
        data[META_KEY] = {**meta, "c": float("nan")}
    elif bend == "a tag that is not ASCII":
        data[META_KEY] = {**meta, "t": "é" * 22}
    elif bend == "a field name that is not ASCII":
        data["é" + field[1:]] = data.pop(field)
    elif bend == "a value that decrypts to two keys":
        data[field] = encrypted(b'{"user":"ada","role":"admin"}', field)
    elif bend == "a value that decrypts to no JSON":
        data[field] = encrypted(b"\xff\xfe", field)
    else:
        data[field] = encrypted(b'{"role":"admin"}', field)
    assert opened(one, data) is None


def test_a_value_json_cannot_hold_fails_naming_its_key_before_any_io() -> None:
    rules = rules_for(OLD)
    for key, value in (("when", NOW), ("nan", float("nan"))):
        session = rules.session_class()
        exchange = rules.exchange_for(session)
        session[key] = value
        with pytest.raises(SessionNotSerializable) as raised:
            exchange.finish(200, lambda request: False, None)
        assert raised.value.key == key
    session = rules.session_class()
    exchange = rules.exchange_for(session)
    session[1] = "x"  # type: ignore[index]
    with pytest.raises(SessionNotSerializable):
        exchange.finish(200, lambda request: False, None)


def test_the_core_entry_written_by_a_handler_is_dropped_as_without_encryption() -> None:
    data = sealed(sealer(OLD), {"user": "ada", META_KEY: "a handler's"})
    assert len(data) == 2


def test_the_ciphers_remembered_are_bounded() -> None:
    one = sealer(OLD)
    for _ in range(CIPHERS_CACHED + 200):
        assert opened(one, sealed(one, {"user": "ada"})) is not None
    assert len(one._ciphers) == CIPHERS_CACHED
