"""Signed cookie values: random session ids, or the whole session (cookie mode).

Verification goes through itsdangerous, which compares signatures in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from typing import Any

import itsdangerous

from . import _json
from ._errors import ConfigurationError
from ._expiry import Clock, utc_now

ID_BYTES = 32  # 256 bits from the operating system's CSPRNG
_ID_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_ID_SALT = b"lazysession.session-id"


class SecretKeys:
    """One or more secret keys: the first signs, every one verifies (key rotation).

    Kept out of ``repr`` so keys do not end up in logs or tracebacks.
    """

    __slots__ = ("_keys",)

    def __init__(self, secret_key: object) -> None:
        if isinstance(secret_key, (list, tuple)):
            keys = [str(k) for k in secret_key]
        else:
            keys = [str(secret_key)] if secret_key is not None else []
        if not keys or any(not k for k in keys):
            raise ConfigurationError(
                "secret_key is empty: pass a long random string, e.g. from "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        self._keys = tuple(keys)

    def for_itsdangerous(self) -> list[str]:
        """itsdangerous signs with the *last* key of its list; ours signs with the first."""
        return list(reversed(self._keys))

    @property
    def current(self) -> str:
        return self._keys[0]

    @property
    def retired(self) -> list[str]:
        return list(reversed(self._keys[1:]))

    def __repr__(self) -> str:
        return f"SecretKeys(<{len(self._keys)} hidden>)"


def new_session_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


def store_key(session_id: str) -> str:
    """The key a session is stored under: a SHA-256 of its id, so a dump of the store
    holds no cookie that would log anyone in."""
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


class _OneShotHMAC(itsdangerous.signer.HMACAlgorithm):
    """HMAC-SHA1 through the C one-shot ``hmac.digest`` (itsdangerous hands ``hmac.new`` a
    digest constructor, which takes the pure-Python path). Same signatures, and
    verification stays itsdangerous's own constant-time check."""

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return hmac.digest(key, value, "sha1")


class _CachedKeySigner(itsdangerous.Signer):
    """itsdangerous derives the HMAC key from the secret on every call; derive each key
    once instead, and sign with the one-shot HMAC."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("algorithm", _OneShotHMAC(hashlib.sha1))
        super().__init__(*args, **kwargs)
        self._derived: dict[bytes, bytes] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        key = (
            self.secret_key if secret_key is None else itsdangerous.encoding.want_bytes(secret_key)
        )
        derived = self._derived.get(key)
        if derived is None:
            derived = self._derived[key] = super().derive_key(key)
        return derived


VERIFIED_CACHE_SIZE = 4096


class _Verified(dict[str, Any]):
    """Cookie values that verified, most recent last, at most ``VERIFIED_CACHE_SIZE``.

    A value that verified once verifies again under the same keys, so a returning browser
    skips the HMAC. Only successes are kept: a forged value can never enter, and each one
    still costs a full check."""

    __slots__ = ()

    def remember(self, value: str, result: Any) -> None:
        if len(self) >= VERIFIED_CACHE_SIZE:
            del self[next(iter(self))]
        self[value] = result


class IdSigner:
    """Signs the random session id that server-side stores key their entries by."""

    __slots__ = ("_retired", "_signer", "_verified")

    def __init__(self, keys: SecretKeys) -> None:
        self._verified = _Verified()
        self._signer = _CachedKeySigner(keys.current, salt=_ID_SALT)
        self._retired = _CachedKeySigner(keys.retired, salt=_ID_SALT) if keys.retired else None

    def sign(self, session_id: str) -> str:
        return self._signer.sign(session_id).decode("ascii")

    def unsign(self, value: str) -> str | None:
        found = self.verify(value)
        return None if found is None else found[0]

    def verify(self, value: str) -> tuple[str, bool, str] | None:
        """The id, whether it was signed with the current key (else re-sign it), and its
        store key (hashed once per browser, not once per request)."""
        found: tuple[str, bool, str] | None = self._verified.get(value)
        if found is None:
            found = self._verify(value)
            if found is not None:
                self._verified.remember(value, found)
        return found

    def _verify(self, value: str) -> tuple[str, bool, str] | None:
        current = True
        try:
            raw = self._signer.unsign(value)
        except itsdangerous.BadSignature:
            if self._retired is None:
                return None
            try:
                raw = self._retired.unsign(value)
            except itsdangerous.BadSignature:
                return None
            current = False
        try:
            session_id = raw.decode("ascii")
        except UnicodeError:
            return None
        if not _ID_SHAPE.match(session_id):
            return None
        return session_id, current, store_key(session_id)


class _ClockedTimestampSigner(itsdangerous.TimestampSigner, _CachedKeySigner):
    clock: Clock = staticmethod(utc_now)

    def get_timestamp(self) -> int:
        return int(self.clock().timestamp())


class DataSigner:
    """Signs a whole session into the cookie, in the format of Starlette's middleware,
    so swapping the middleware keeps every existing session valid."""

    __slots__ = ("_signer", "_verified")

    def __init__(self, keys: SecretKeys, clock: Clock = utc_now) -> None:
        self._verified = _Verified()
        self._signer = _ClockedTimestampSigner(keys.for_itsdangerous())
        self._signer.clock = clock

    def sign(self, encoded_json: str) -> str:
        payload = base64.b64encode(encoded_json.encode("utf-8"))
        return self._signer.sign(payload).decode("ascii")

    def unsign(self, value: str) -> tuple[dict[str, Any], float] | None:
        """The session in the cookie and when it was signed (its last write or touch)."""
        verified: tuple[bytes, float] | None = self._verified.get(value)
        if verified is None:
            try:
                payload, signed_at = self._signer.unsign(value, return_timestamp=True)
                verified = (base64.b64decode(payload, validate=True), signed_at.timestamp())
            except (itsdangerous.BadSignature, binascii.Error, UnicodeError, ValueError):
                return None
            self._verified.remember(value, verified)
        data = _json.loads(verified[0])  # a fresh dict each time: the handler may change it
        return None if data is None else (data, verified[1])
