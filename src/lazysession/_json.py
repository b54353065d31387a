"""JSON is the only format session data is ever stored in (never pickle)."""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import SessionNotSerializable

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_decoder = json.JSONDecoder()
_scan = _decoder.scan_once  # type: ignore[attr-defined]  # set by __init__, not typed


def _unencodable(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _one_shot_encoder() -> Callable[[Any], str]:
    """The same encoding as ``_encoder``, through the C encoder built once instead of on
    every call (``JSONEncoder.encode`` builds it anew each time, about half its cost).
    Without the circular-reference table, a cycle ends in RecursionError instead."""
    make = json.encoder.c_make_encoder  # type: ignore[attr-defined]  # None without C
    if make is None:  # no C accelerator (e.g. PyPy): the plain encoder
        return _encoder.encode
    chunks = make(
        None, _unencodable, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    return lambda data: "".join(chunks(data, 0))


_encode = _one_shot_encoder()


def dumps(data: Mapping[str, Any]) -> str:
    """Encode a session, naming the first key whose value cannot be stored."""
    try:
        return _encode(data)
    except (TypeError, ValueError, RecursionError):
        raise _not_serializable(data) from None


def dumps_value(key: str, value: Any) -> str:
    """Encode one session value (for stores that keep one field per key)."""
    try:
        return _encode(value)
    except (TypeError, ValueError, RecursionError):
        raise SessionNotSerializable(key, value) from None


def loads_value(raw: str | bytes) -> Any:
    """Decode one stored value; ValueError (UnicodeDecodeError included) when it is not
    a JSON value."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):  # whitespace around it, or something else: the full parser
        value = _decoder.decode(text)
    return value


def loads(text: str | bytes) -> dict[str, Any] | None:
    """Decode a stored session; anything but a JSON object is treated as absent."""
    try:
        value = loads_value(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _not_serializable(data: Mapping[str, Any]) -> Exception:
    for key, value in data.items():
        if not isinstance(key, str):
            return SessionNotSerializable(repr(key), key)
        try:
            _encoder.encode(value)
        except (TypeError, ValueError, RecursionError):
            return SessionNotSerializable(key, value)
    return SessionNotSerializable("?", data)  # pragma: no cover - encode failed, no value did
