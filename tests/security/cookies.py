"""Valid cookies and the ways an attacker bends them, shared by the security tests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from lazysession import SQLAlchemyStore, Store
from tests.helpers import RecordingStore

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def flip_spare_bits(value: str) -> str:
    """The last base64 character with its unused low bits set: lenient decoders read the
    same bytes from it."""
    index = B64URL.index(value[-1])
    return value[:-1] + B64URL[index | 1]


MUTATIONS: dict[str, Callable[[str], str]] = {
    "junk appended": lambda v: v + "!!!!",
    "punctuation appended": lambda v: v + '!"()<>[]{}*?',
    "spare bits flipped": flip_spare_bits,
    "latin-1 padding": lambda v: v + "\xe9" * 40,
    "non-ASCII inside the signature": lambda v: v[:-3] + "\xe9" + v[-3:],
    "tabs inside the signature": lambda v: v[:-3] + "\t" * 4 + v[-3:],
    "padding appended": lambda v: v + "==",
    "spaces and commas inside the signature": lambda v: v[:-3] + ", , " + v[-3:],
}
"""Each turns a valid cookie value into bytes that are not the value the server sent, and
that a lenient base64 decoder reads as the same signature (lengths keep its padding right)."""

# A signed id: the id (48 characters; 43 for one minted before ids carried a time), then
# the signature.
SIGNED_ID = re.compile(
    r"(?:[A-Za-z0-9_-]{48}|[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048])"
    r"\.[A-Za-z0-9_-]{26}[AEIMQUYcgkosw048]"
)


def cookie(value: str, name: str = "session") -> dict[bytes, bytes]:
    """Request headers with a ``Cookie`` carrying ``value`` byte for byte (latin-1, as
    ASGI has it)."""
    return {b"cookie": f"{name}={value}".encode("latin-1")}


def set_cookie_value(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0].split("=", 1)[1]


@asynccontextmanager
async def store_of(kind: str, tmp_path: Path) -> AsyncIterator[Store | None]:
    """``memory`` (counting its calls), ``sqlite`` (a file), or ``cookie`` (None)."""
    if kind == "cookie":
        yield None
    elif kind == "memory":
        yield RecordingStore()
    else:
        sql = SQLAlchemyStore(f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}")
        try:
            yield sql
        finally:
            await sql.aclose()
