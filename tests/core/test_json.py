"""Session data is JSON: what encodes, what decodes, and what is refused."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lazysession import SessionNotSerializable, _json

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
sessions = st.dictionaries(st.text(), json_values, max_size=6)


@given(sessions)
def test_a_session_reads_back_as_it_was_written(data: dict[str, Any]) -> None:
    assert _json.loads(_json.dumps(data)) == data


@given(sessions)
def test_the_encoding_is_compact_json_with_unicode_kept(data: dict[str, Any]) -> None:
    expected = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    assert _json.dumps(data) == expected


@given(st.text())
def test_any_text_decodes_to_a_dict_or_none_and_never_raises(text: str) -> None:
    assert _json.loads(text) is None or isinstance(_json.loads(text), dict)


def test_whitespace_around_stored_text_is_accepted() -> None:
    assert _json.loads(' \n{"a": 1}\t ') == {"a": 1}


def test_text_with_trailing_garbage_is_treated_as_absent() -> None:
    assert _json.loads('{"a":1}{"b":2}') is None


def test_json_that_is_not_an_object_is_treated_as_absent() -> None:
    assert _json.loads("[1, 2]") is None


def test_bytes_that_are_not_utf8_are_treated_as_absent() -> None:
    assert _json.loads(b'{"a":"\xff"}') is None


def test_a_session_that_contains_itself_is_not_serialisable() -> None:
    looped: dict[str, Any] = {}
    looped["me"] = looped
    with pytest.raises(SessionNotSerializable, match="'me'"):
        _json.dumps({"ok": 1, "me": looped})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_not_serialisable(value: float) -> None:
    with pytest.raises(SessionNotSerializable, match="'x'"):
        _json.dumps({"x": value})


def test_an_object_json_cannot_hold_is_named_in_the_error() -> None:
    with pytest.raises(SessionNotSerializable, match="'when'"):
        _json.dumps({"fine": [1, 2], "when": object()})


HUGE = 10**5000  # past sys.get_int_max_str_digits() (4300 by default)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"name": "\ud800"}, "'name'"),
        ({"ok": 1, "\udfff": 1}, r"'\\udfff'"),
        ({"a": [{"b": "x\udc80"}]}, "'a'"),
        ({"n": HUGE}, "'n'"),
        ({HUGE: 1}, "int too long to show"),
        ({True: 1}, r"\[True\]"),
        ({1: 1}, r"\[1\]"),
        ({None: 1}, r"\[None\]"),
        ({1.5: 1}, r"\[1.5\]"),
        ({"a": {"ok": {2: "x"}}}, "'a'"),
        ({"a": [1, {False: 0}]}, "'a'"),
    ],
    ids=[
        "lone surrogate value",
        "lone surrogate key",
        "lone surrogate deep",
        "int too long",
        "int key too long",
        "bool key",
        "int key",
        "None key",
        "float key",
        "int key nested",
        "bool key in a list",
    ],
)
def test_what_json_cannot_hold_exactly_is_refused_naming_the_key(
    data: dict[Any, Any], named: str
) -> None:
    with pytest.raises(SessionNotSerializable, match=named):
        _json.dumps(data)


def test_the_error_names_the_kind_of_value_but_never_the_value() -> None:
    with pytest.raises(SessionNotSerializable) as raised:
        _json.dumps({"token": "secret-\ud800-value"})
    assert "secret" not in str(raised.value)
    assert raised.value.key == "token"


@pytest.mark.parametrize(
    "value",
    ["\ud800", HUGE, {1: "x"}, [{"a": {True: 1}}]],
    ids=["surrogate", "huge", "int key", "nested"],
)
def test_one_value_that_json_cannot_hold_is_refused_naming_the_key(value: Any) -> None:
    with pytest.raises(SessionNotSerializable, match="'field'"):
        _json.dumps_value("field", value)


any_keys = st.one_of(
    st.text(st.characters(exclude_categories=())), st.integers(), st.booleans(), st.none()
)
anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(exclude_categories=())),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_keys, inner, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(any_keys, anything, max_size=4))
def test_a_session_is_either_refused_or_read_back_exactly(data: dict[Any, Any]) -> None:
    try:
        text = _json.dumps(data)
    except SessionNotSerializable:
        return
    text.encode("utf-8")
    assert _json.loads(text) == data


@pytest.mark.parametrize("key", ["1", "-2.5", "true", "false", "null", "1e+16"])
def test_str_keys_that_read_like_numbers_or_constants_are_kept(key: str) -> None:
    data = {key: 1, "nested": {key: [{key: None}]}}
    assert _json.loads(_json.dumps(data)) == data
