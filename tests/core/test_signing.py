"""Signed ids and signed cookie data: anything we did not sign is nothing."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import itsdangerous
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lazysession import ConfigurationError, _signing
from lazysession._signing import DataSigner, IdSigner, SecretKeys, new_session_id, store_key
from tests.security.cookies import MUTATIONS

KEYS = SecretKeys("k" * 32)
ROTATED = SecretKeys(["n" * 32, "k" * 32])


def _edited(value: str, at: int, removed: int, inserted: str) -> str:
    at = at % (len(value) + 1)
    return value[:at] + inserted + value[at + removed :]


# Inserted text favours what lenient decoders skip (not base64) or pad with.
SKIPPED_OR_PADDING = ' \t!"(),;=<>*?[]{}\xe9\x00\u0100.~+/AQgw'
inserted = st.text(alphabet=st.sampled_from(SKIPPED_OR_PADDING), max_size=8)
edits = st.tuples(st.integers(0, 10_000), st.integers(0, 3), inserted | st.text(max_size=8))


def id_in(signer: IdSigner, value: str) -> str | None:
    """The id ``value`` verifies to, as the core asks for it (None: not one of ours)."""
    found = signer.verify(value)
    return None if found is None else found[0]


def test_session_ids_never_repeat() -> None:
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(base64.urlsafe_b64decode(i)) == 36 for i in ids)  # see test_session_ids


def test_store_keys_are_64_hex_digits_and_not_the_id() -> None:
    session_id = new_session_id()
    key = store_key(session_id)
    assert len(key) == 64 and session_id not in key


def test_a_signed_id_round_trips() -> None:
    signer = IdSigner(KEYS)
    session_id = new_session_id()
    assert id_in(signer, signer.sign(session_id)) == session_id


def test_an_id_signed_with_another_key_is_rejected() -> None:
    other = IdSigner(SecretKeys("o" * 32))
    assert id_in(IdSigner(KEYS), other.sign(new_session_id())) is None


def test_a_signed_value_of_the_wrong_shape_is_not_an_id() -> None:
    raw = itsdangerous.Signer(KEYS.for_itsdangerous(), salt=b"lazysession.session-id")
    assert id_in(IdSigner(KEYS), raw.sign("short").decode()) is None


@given(st.text())
def test_arbitrary_text_is_never_an_id(value: str) -> None:
    assert id_in(IdSigner(KEYS), value) is None


def test_every_listed_key_verifies_and_the_first_signs() -> None:
    old = IdSigner(SecretKeys("old" * 11))
    rotated = IdSigner(SecretKeys(["new" * 11, "old" * 11]))
    session_id = new_session_id()
    assert id_in(rotated, old.sign(session_id)) == session_id
    assert id_in(IdSigner(SecretKeys("new" * 11)), rotated.sign(session_id)) == session_id


def test_an_empty_secret_key_is_a_start_up_error() -> None:
    with pytest.raises(ConfigurationError):
        SecretKeys("")


def test_secret_keys_stay_out_of_repr() -> None:
    assert "k" * 32 not in repr(KEYS)


def test_cookie_data_reads_starlettes_own_format() -> None:
    starlette_signer = itsdangerous.TimestampSigner("k" * 32)
    value = starlette_signer.sign(base64.b64encode(json.dumps({"a": 1}).encode())).decode()
    unsigned = DataSigner(KEYS).unsign(value)
    assert unsigned is not None
    assert unsigned[0] == {"a": 1}


def test_cookie_data_tells_when_it_was_signed() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    value = DataSigner(KEYS, clock=lambda: now).sign('{"a":1}')
    later = DataSigner(KEYS, clock=lambda: now + timedelta(seconds=61))
    assert later.unsign(value) == ({"a": 1}, now.timestamp())


def test_an_id_signed_with_a_retired_key_is_flagged_for_re_signing() -> None:
    session_id = new_session_id()
    old = IdSigner(SecretKeys("old" * 11)).sign(session_id)
    rotated = IdSigner(SecretKeys(["new" * 11, "old" * 11]))
    assert rotated.verify(old) == (session_id, False, store_key(session_id))
    assert rotated.verify(rotated.sign(session_id)) == (session_id, True, store_key(session_id))


@given(st.binary(max_size=2000))
def test_signed_garbage_is_never_session_data(payload: bytes) -> None:
    signer = itsdangerous.TimestampSigner(KEYS.for_itsdangerous())
    value = signer.sign(payload).decode("latin-1")
    unsigned = DataSigner(KEYS).unsign(value)
    assert unsigned is None or isinstance(unsigned[0], dict)


def test_a_verified_id_is_remembered_but_a_forgery_never_is() -> None:
    signer = IdSigner(KEYS)
    good = signer.sign(new_session_id())
    forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    assert signer.verify(good) is not None
    assert signer.verify(forged) is None
    assert good in signer._verified
    assert forged not in signer._verified


def test_the_memory_of_verified_values_is_bounded() -> None:
    from lazysession._signing import VERIFIED_CACHE_SIZE

    signer = IdSigner(KEYS)
    for _ in range(VERIFIED_CACHE_SIZE + 10):
        assert signer.verify(signer.sign(new_session_id())) is not None
    assert len(signer._verified) == VERIFIED_CACHE_SIZE


def test_remembered_cookie_data_is_decoded_afresh_each_time() -> None:
    signer = DataSigner(KEYS)
    value = signer.sign('{"cart":[1]}')
    first = signer.unsign(value)
    assert first is not None
    first[0]["cart"].append(2)
    again = signer.unsign(value)
    assert again is not None
    assert again[0] == {"cart": [1]}


@pytest.mark.parametrize("mutate", MUTATIONS.values(), ids=MUTATIONS.keys())
@pytest.mark.parametrize("keys", [KEYS, ROTATED], ids=["current key", "retired key"])
def test_a_signed_id_verifies_only_byte_for_byte(mutate: Any, keys: SecretKeys) -> None:
    value = IdSigner(KEYS).sign(new_session_id())
    signer = IdSigner(keys)
    assert signer.verify(value) is not None
    assert signer.verify(mutate(value)) is None


@pytest.mark.parametrize("mutate", MUTATIONS.values(), ids=MUTATIONS.keys())
@pytest.mark.parametrize("keys", [KEYS, ROTATED], ids=["current key", "retired key"])
def test_signed_data_verifies_only_byte_for_byte(mutate: Any, keys: SecretKeys) -> None:
    value = DataSigner(KEYS).sign('{"user":"ada"}')
    signer = DataSigner(keys)
    assert signer.unsign(value) is not None
    assert signer.unsign(mutate(value)) is None


@given(edits)
def test_any_edit_of_a_signed_id_fails_to_verify(edit: tuple[int, int, str]) -> None:
    signer = IdSigner(KEYS)
    value = signer.sign(new_session_id())
    edited = _edited(value, *edit)
    assert (signer.verify(edited) is not None) == (edited == value)


@given(edits)
def test_any_edit_of_signed_data_fails_to_verify(edit: tuple[int, int, str]) -> None:
    signer = DataSigner(KEYS)
    value = signer.sign('{"cart":[1,2,3]}')
    edited = _edited(value, *edit)
    assert (signer.unsign(edited) is not None) == (edited == value)


def test_cookie_data_longer_than_a_browser_keeps_is_not_read() -> None:
    signer = itsdangerous.TimestampSigner(KEYS.for_itsdangerous())
    payload = base64.b64encode(json.dumps({"a": "x" * 4000}).encode())
    value = signer.sign(payload).decode()
    assert len(value) > 4096
    assert DataSigner(KEYS).unsign(value) is None


def test_the_memory_of_verified_cookie_data_is_bounded_in_bytes() -> None:
    signer = DataSigner(KEYS)
    for n in range(600):
        value = signer.sign(json.dumps({"n": n, "pad": "x" * 2900}))
        assert signer.unsign(value) is not None
    held = sum(len(value) for value in signer._verified)
    assert held == signer._verified.held <= _signing.VERIFIED_CACHE_BYTES
    assert len(signer._verified) < 600


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=300))
def test_cookie_data_is_signed_byte_for_byte_as_itsdangerous_signs_it(text: str) -> None:
    at = datetime(2026, 5, 4, 3, 2, 1, tzinfo=timezone.utc)
    expected = itsdangerous.TimestampSigner(["k" * 32, "n" * 32])  # signs with the last
    expected.get_timestamp = lambda: int(at.timestamp())  # type: ignore[method-assign]
    payload = base64.b64encode(text.encode("utf-8"))
    signed = DataSigner(ROTATED, clock=lambda: at).sign(text)
    assert signed == expected.sign(payload).decode("ascii")


def test_an_id_is_signed_byte_for_byte_as_itsdangerous_signs_it() -> None:
    session_id = new_session_id()
    expected = itsdangerous.Signer("n" * 32, salt="lazysession.session-id")
    assert IdSigner(ROTATED).sign(session_id) == expected.sign(session_id).decode("ascii")
