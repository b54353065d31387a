"""JSON is the only format session data is ever stored in (never pickle).

Rules:
- What ``dumps`` returns reads back as the same data on every store: so keys are ``str``
  at every level (JSON would turn ``True`` into ``"true"`` and ``1`` into ``"1"``, and a
  store keeping a field per key would do it its own way), and the text is valid UTF-8
  (no lone surrogates).
- Anything JSON cannot hold raises ``SessionNotSerializable`` naming the session key:
  a non-``str`` key at any depth, a lone surrogate, an int longer than
  ``sys.get_int_max_str_digits()``, NaN or infinity, a cycle, any other type. Callers
  encode before any I/O, so nothing is written.
"""

from __future__ import annotations

import json
import json.encoder
import re
import sys
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
        text = _encode(data)
    except (TypeError, ValueError, RecursionError):
        raise _not_serializable(data) from None
    if not (text.isascii() or _is_utf8(text)):
        raise _not_serializable(data)
    if len(data) <= _WALKED:  # a few keys: walking them costs less than the search
        if not _str_keys(data):
            raise _not_serializable(data)
    elif _CONVERTED_KEY.search(text) is not None and not _str_keys(data):
        raise _not_serializable(data)
    return text


def dumps_value(key: str, value: Any) -> str:
    """Encode one session value (for stores that keep one field per key)."""
    why = _problem(value)
    if why is not None:
        raise SessionNotSerializable(key, value, why)
    return _encode(value)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


_SCALARS = frozenset((str, int, float, bool, type(None)))

_CONVERTED_KEY = re.compile(r'[{,]"(?:-?[0-9][0-9.e+-]*|true|false|null)":')
"""An object key as the encoder writes one it converted (an int, float, bool or None key).
Keys are the only strings the compact encoding puts right after '{' or ',' and before
':' (quotes inside strings are escaped), so text without a match had only str keys; a
match may be a str key such as "1", which the walk over the data then tells apart."""


_WALKED = 8
"""Top-level keys up to which ``dumps`` checks the keys by walking the data; past it, it
searches the text first (linear in the text, with no Python step per key)."""


def _str_keys(data: Mapping[Any, Any]) -> bool:
    """Whether every dict in ``data`` (at any depth) has only ``str`` keys."""
    for key, item in data.items():
        if key.__class__ is not str and not isinstance(key, str):
            return False
        if item.__class__ not in _SCALARS and not _nested_str_keys(item):
            return False
    return True


def _nested_str_keys(value: Any) -> bool:
    """The same below the top. A plain dict or list of scalars (the usual nested values)
    is checked in one pass; anything deeper in a loop, not by recursion (the encoder has
    already refused anything nested too deep for the stack)."""
    cls = value.__class__
    if cls is list or cls is tuple:
        for item in value:
            if item.__class__ not in _SCALARS:
                return _walk(value)
        return True
    if cls is dict:
        for key, item in value.items():
            if key.__class__ is not str or item.__class__ not in _SCALARS:
                return _walk(value)
        return True
    return _walk(value)


def _walk(value: Any) -> bool:
    pending = [value]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            for key, item in node.items():
                if key.__class__ is not str and not isinstance(key, str):
                    return False
                if item.__class__ not in _SCALARS:
                    pending.append(item)
        elif isinstance(node, (list, tuple)):
            pending.extend(item for item in node if item.__class__ not in _SCALARS)
    return True


def loads_value(raw: str | bytes) -> Any:
    """Decode one stored value; ValueError (UnicodeDecodeError included) when it is not
    a JSON value, or nests deeper than the decoder can follow (written elsewhere)."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        try:
            value, end = _scan(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):  # whitespace around it, or something else: the full parser
            value = _decoder.decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply to decode") from None
    return value


def loads(text: str | bytes) -> dict[str, Any] | None:
    """Decode a stored session; anything but a JSON object is treated as absent. (What
    ``loads_value`` does, inlined: this runs on every load.)"""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        try:
            value, end = _scan(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):
            value = _decoder.decode(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _problem(value: Any) -> str | None:
    """Why ``value`` cannot be stored as a session value, or None when it can."""
    try:
        text = _encode(value)
    except RecursionError:
        return f"holds a {type(value).__name__} nested too deeply, or containing itself"
    except ValueError:
        return (
            f"holds a {type(value).__name__} with a NaN or infinite float, or an int of "
            f"more than {sys.get_int_max_str_digits()} digits, which JSON cannot hold"
        )
    except TypeError:
        return f"holds a {type(value).__name__}, which is not JSON-serialisable"
    if not (text.isascii() or _is_utf8(text)):
        return (
            f"holds a {type(value).__name__} with a lone surrogate, which is not valid "
            "Unicode and cannot be stored as UTF-8"
        )
    if not _nested_str_keys(value):
        return f"holds a {type(value).__name__} with a key that is not a str; keys must be str"
    return None


def _not_serializable(data: Mapping[str, Any]) -> Exception:
    for key, value in data.items():
        if not isinstance(key, str):
            return SessionNotSerializable(
                key, value, f"has a {type(key).__name__} key; session keys must be str"
            )
        if not _is_utf8(key):
            return SessionNotSerializable(
                key, value, "has a key with a lone surrogate, which cannot be stored as UTF-8"
            )
        why = _problem(value)
        if why is not None:
            return SessionNotSerializable(key, value, why)
    return SessionNotSerializable("?", data)  # pragma: no cover - encode failed, no value did
