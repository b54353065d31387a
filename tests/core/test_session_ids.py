"""Session ids carry their creation time, and store keys begin with it, so the rows of
sessions that expire together are neighbours in a store's index; ids minted before that
(43 characters, all random) keep their keys (a SHA-256 of the id)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time

from hypothesis import example, given
from hypothesis import strategies as st

from lazysession._signing import (
    ID_RANDOM_BITS,
    IdSigner,
    SecretKeys,
    id_created,
    new_session_id,
    store_key,
)

KEYS = SecretKeys("k" * 32)
HEX64 = re.compile("[0-9a-f]{64}")
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

milliseconds = st.integers(0, 2**48 - 1)
"""Every creation time a key's 12 hex digits hold (to the year 10889)."""
moments = st.floats(0, 2**48 / 1000 - 1, allow_nan=False)


def old_id(raw: bytes) -> str:
    """An id as minted before ids carried a time: 32 random bytes, unpadded base64."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_new_id_is_48_characters_of_its_creation_time_and_240_random_bits() -> None:
    before = time.time_ns() // 1_000_000
    session_id = new_session_id()
    after = time.time_ns() // 1_000_000
    raw = base64.urlsafe_b64decode(session_id)
    assert len(session_id) == 48 and len(raw) == 36
    assert before <= int.from_bytes(raw[:6], "big") <= after
    assert ID_RANDOM_BITS == 240 == len(raw[6:]) * 8


def test_ids_minted_in_the_same_millisecond_never_repeat() -> None:
    ids = {new_session_id(1_700_000_000.0) for _ in range(10_000)}
    assert len(ids) == 10_000
    assert len({session_id[8:] for session_id in ids}) == 10_000  # the random part differs


@given(moments)
def test_the_creation_time_is_read_back_from_the_id_alone(created: float) -> None:
    session_id = new_session_id(created)
    assert id_created(session_id) == int(created * 1000) / 1000


@given(st.floats(-1e12, 1e15, allow_nan=False))
def test_a_clock_outside_what_the_key_holds_still_mints_an_id(created: float) -> None:
    created_at = id_created(new_session_id(created))
    assert created_at is not None and 0 <= created_at <= (2**48 - 1) / 1000


@given(moments)
def test_a_new_ids_key_is_its_creation_time_then_52_hex_of_its_sha256(created: float) -> None:
    session_id = new_session_id(created)
    key = store_key(session_id)
    assert HEX64.fullmatch(key)
    assert key[:12] == f"{int(created * 1000):012x}"
    assert key[12:] == hashlib.sha256(session_id.encode()).hexdigest()[:52]
    assert session_id not in key


@given(milliseconds, milliseconds)
def test_keys_sort_by_creation_time(first: int, second: int) -> None:
    a, b = new_session_id(first / 1000), new_session_id(second / 1000)
    if first < second:
        assert store_key(a) < store_key(b)
    elif first > second:
        assert store_key(a) > store_key(b)


@given(st.binary(min_size=32, max_size=32))
@example(bytes(32))
@example(b"\xff" * 32)
def test_an_id_minted_before_ids_carried_a_time_keeps_its_key(raw: bytes) -> None:
    session_id = old_id(raw)
    assert len(session_id) == 43
    assert id_created(session_id) is None
    assert store_key(session_id) == hashlib.sha256(session_id.encode()).hexdigest()


@given(st.text(alphabet=st.sampled_from(B64URL + "=.+/ ~\xe9"), max_size=60) | st.text())
@example("A" * 47)
@example("A" * 49)
@example("A" * 47 + "=")
@example("A" * 47 + "+")
@example("A" * 47 + ".")
def test_text_that_is_not_a_new_id_has_no_creation_time(text: str) -> None:
    if len(text) == 48 and all(c in B64URL for c in text):
        assert id_created(text) is not None  # the one shape a new id has
        return
    assert id_created(text) is None
    if text.isascii():
        assert store_key(text) == hashlib.sha256(text.encode()).hexdigest()


def test_a_cookie_signed_before_ids_carried_a_time_still_verifies_to_its_old_key() -> None:
    signer = IdSigner(KEYS)
    session_id = old_id(os.urandom(32))
    signed = signer.sign(session_id)
    assert len(signed) == 71
    assert signer.verify(signed) == (
        session_id,
        True,
        hashlib.sha256(session_id.encode()).hexdigest(),
    )


def test_a_signed_new_id_verifies_to_its_time_prefixed_key() -> None:
    signer = IdSigner(KEYS)
    session_id = new_session_id(1_700_000_000.5)
    signed = signer.sign(session_id)
    assert len(signed) == 76
    found = signer.verify(signed)
    assert found is not None and found[0] == session_id
    assert found[2].startswith(f"{1_700_000_000_500:012x}")


@given(st.integers(0, 75), st.sampled_from(B64URL))
def test_a_signed_new_id_with_any_character_changed_does_not_verify(at: int, char: str) -> None:
    signer = IdSigner(KEYS)
    signed = signer.sign(new_session_id(1_700_000_000.0))
    edited = signed[:at] + char + signed[at + 1 :]
    assert (signer.verify(edited) is not None) == (edited == signed)


def test_a_session_is_keyed_by_the_time_it_began_and_a_login_by_its_own() -> None:
    from tests.core.test_lifecycle import Clock, make_rules, new_session, persist

    def ms_hex(clock: Clock) -> str:
        return f"{round(clock.now.timestamp() * 1000):012x}"

    clock = Clock()
    rules = make_rules(clock)
    began = ms_hex(clock)
    cookie, stored = new_session(rules, cart=[1])
    clock.advance(90.25)
    exchange = rules.begin(cookie)
    key = exchange.load_key
    assert key is not None and key[:12] == began  # read back from the cookie's id
    exchange.loaded(stored)
    assert exchange.session is not None
    exchange.session.regenerate()
    rotation = exchange.finish(200, persist, None).rotate
    assert rotation is not None and rotation.old_id == key
    assert rotation.session_id[:12] == ms_hex(clock) > began
