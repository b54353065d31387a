"""A Redis session's hash: its fields, and the record it decodes to.

Rules:
- One hash per session, ``<prefix><session_id>``: a field ``e`` with the expiry (ms since
  the epoch) and a field ``d:<key>`` with each session key's JSON value; ``r`` marks a
  retired id, ``v`` is the version, and an owned session holds ``u``, ``s`` and ``x``
  (the owner index, ``_redis_ops``).
- A session's size is measured as the JSON it encodes to, each key as JSON writes it
  (a quote or backslash in two bytes, a control character in two or six).
- A hash whose ``e`` is past the store's clock decodes to nothing, as does one holding a
  value we did not write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .. import _json
from .._expiry import META_KEY, from_timestamp
from ._base import Record

EXPIRY = b"e"
ROTATED = b"r"
VERSION = b"v"
DATA = "d:"
_DATA_BYTES = DATA.encode()
_META_FIELD = DATA + META_KEY
OWNER = b"u"
SEEN = b"s"
INDEX_LIFE = b"x"


def fields(data: Mapping[str, Any]) -> list[str]:
    """Field/value pairs for HSET; every value is encoded (or refused) before any I/O."""
    pairs: list[str] = []
    for key, value in data.items():
        pairs += (DATA + key, _json.dumps_value(key, value))
    return pairs


_ESCAPED = re.compile(rb'["\\\x00-\x1f]')
"""Bytes JSON writes escaped in a key: quote, backslash, control characters."""


def decode(raw: Mapping[bytes, bytes], now_ms: int) -> Record | None:
    """The record for a hash as ``HGETALL`` hands it back (None: absent or expired)."""
    expiry = raw.get(EXPIRY)
    if not raw or expiry is None or int(expiry) <= now_ms:
        return None
    expires_at = from_timestamp(int(expiry) / 1000)
    successor = raw.get(ROTATED)
    if successor is not None:
        return Record({}, expires_at, retired=True, rotated=successor != b"")
    data: dict[str, Any] = {}
    size = 1
    try:
        for field, value in raw.items():
            if field.startswith(_DATA_BYTES):
                name = field[len(_DATA_BYTES) :].decode("utf-8")
                data[name] = _json.loads_value(value)
                size += len(field) + 2 + len(value)
                if _ESCAPED.search(field) is not None:  # JSON writes these longer
                    size += len(_json.dumps_value(name, name).encode()) - len(field)
    except ValueError:
        return None  # a value we did not write: treat the session as absent
    return Record(data, expires_at, raw.get(VERSION, b"0").decode("ascii"), size)
