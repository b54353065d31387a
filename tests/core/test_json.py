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
