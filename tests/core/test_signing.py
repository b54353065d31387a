"""Signed ids and signed cookie data: anything we did not sign is nothing."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import itsdangerous
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lazysession import ConfigurationError
from lazysession._signing import DataSigner, IdSigner, SecretKeys, new_session_id, store_key

KEYS = SecretKeys("k" * 32)


def test_session_ids_carry_256_bits_and_never_repeat() -> None:
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(base64.urlsafe_b64decode(i + "=")) == 32 for i in ids)


def test_store_keys_are_sha256_hex_and_not_the_id() -> None:
    session_id = new_session_id()
    key = store_key(session_id)
    assert len(key) == 64 and session_id not in key


def test_a_signed_id_round_trips() -> None:
    signer = IdSigner(KEYS)
    session_id = new_session_id()
    assert signer.unsign(signer.sign(session_id)) == session_id


def test_an_id_signed_with_another_key_is_rejected() -> None:
    other = IdSigner(SecretKeys("o" * 32))
    assert IdSigner(KEYS).unsign(other.sign(new_session_id())) is None


def test_a_signed_value_of_the_wrong_shape_is_not_an_id() -> None:
    raw = itsdangerous.Signer(KEYS.for_itsdangerous(), salt=b"lazysession.session-id")
    assert IdSigner(KEYS).unsign(raw.sign("short").decode()) is None


@given(st.text())
def test_arbitrary_text_is_never_an_id(value: str) -> None:
    assert IdSigner(KEYS).unsign(value) is None


def test_every_listed_key_verifies_and_the_first_signs() -> None:
    old = IdSigner(SecretKeys("old" * 11))
    rotated = IdSigner(SecretKeys(["new" * 11, "old" * 11]))
    session_id = new_session_id()
    assert rotated.unsign(old.sign(session_id)) == session_id
    assert IdSigner(SecretKeys("new" * 11)).unsign(rotated.sign(session_id)) == session_id


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
