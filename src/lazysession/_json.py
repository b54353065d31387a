"""JSON is the only format session data is ever stored in (never pickle)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._errors import SessionNotSerializable

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_decoder = json.JSONDecoder()


def dumps(data: Mapping[str, Any]) -> str:
    """Encode a session, naming the first key whose value cannot be stored."""
    try:
        return _encoder.encode(data)
    except (TypeError, ValueError):
        raise _not_serializable(data) from None


def dumps_value(key: str, value: Any) -> str:
    """Encode one session value (for stores that keep one field per key)."""
    try:
        return _encoder.encode(value)
    except (TypeError, ValueError):
        raise SessionNotSerializable(key, value) from None


def loads(text: str | bytes) -> dict[str, Any] | None:
    """Decode a stored session; anything but a JSON object is treated as absent."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        value = _decoder.decode(text)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _not_serializable(data: Mapping[str, Any]) -> Exception:
    for key, value in data.items():
        if not isinstance(key, str):
            return SessionNotSerializable(repr(key), key)
        try:
            _encoder.encode(value)
        except (TypeError, ValueError):
            return SessionNotSerializable(key, value)
    return SessionNotSerializable("?", data)  # pragma: no cover - encode failed, no value did
