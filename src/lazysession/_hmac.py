"""HMAC-SHA1 signatures in itsdangerous's encoding (what Starlette's cookies use, hence
SHA-1), made with as few steps as a request can afford: ``_signing`` signs through it,
and verifies through itsdangerous."""

from __future__ import annotations

import binascii
import hashlib
import struct

PACK_TIME = struct.Struct(">Q").pack
"""itsdangerous's timestamp: 8 bytes big-endian, leading zero bytes dropped."""
_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def b64url(raw: bytes) -> bytes:
    """Unpadded URL-safe base64 (``base64.urlsafe_b64encode`` without its Python steps)."""
    return binascii.b2a_base64(raw, newline=False).translate(_URL_SAFE).rstrip(b"=")


class HMAC:
    """HMAC-SHA1 under one key (RFC 2104), its padded key's two hashes begun once: each
    signature copies them, instead of ``hmac.digest`` setting up the key every time."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:  # the block size: a longer key is hashed first
            key = hashlib.sha1(key).digest()  # noqa: S324
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha1(bytes(byte ^ 0x36 for byte in key))  # noqa: S324
        self._outer = hashlib.sha1(bytes(byte ^ 0x5C for byte in key))  # noqa: S324

    def signed(self, value: bytes) -> str:
        """``value``, ``.`` and its HMAC in unpadded URL-safe base64: byte for byte what
        itsdangerous's ``Signer.sign`` returns under the derived key."""
        inner = self._inner.copy()
        inner.update(value)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return (value + b"." + b64url(outer.digest())).decode("ascii")
