"""Signed cookie values: random session ids, or the whole session (cookie mode).

Rules:
- Exactly one byte string verifies for a given signed value: the one ``sign`` returns.
  itsdangerous decodes signatures leniently (it skips bytes outside the base64 alphabet,
  ignores the unused bits of the last character, tolerates extra padding), so every value
  is first checked against the exact shape and length we produce, before any HMAC.
- Verification goes through itsdangerous, which compares signatures in constant time.
  Signing makes the same bytes itsdangerous would, with the derived key's HMAC begun
  once (``_hmac.HMAC``), without its layers of calls on every write.
- Values that verified are remembered, so a returning browser skips the HMAC; only
  canonical values that verified can enter, and the memory is bounded in entries and in
  bytes. A forged or bent value is never remembered and always pays the full check.
- With ``encrypt=True`` the cookie store's cookie is encrypted instead (``DataCipher``):
  AES-256-GCM, whose tag is the signature. Its value is unpadded URL-safe base64 of 16
  random bytes, the ciphertext of the signing time and the session's JSON, and the tag;
  under a key derived from the secret key and those random bytes, with the cookie's name
  as associated data. Only the exact base64 that ``sign`` returned is decoded (the same
  canonical rule), and cookies signed before encryption was turned on are still read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from typing import Any

import itsdangerous

from . import _json
from ._cookies import BROWSER_COOKIE_LIMIT
from ._errors import ConfigurationError, logger
from ._expiry import Clock, seconds_of, utc_now
from ._hmac import HMAC, PACK_TIME, b64url

TIME_BYTES = 6  # the creation time, in milliseconds since the epoch (to the year 10889)
RANDOM_BYTES = 30
ID_RANDOM_BITS = RANDOM_BYTES * 8  # 240, from the operating system's CSPRNG
_ID_SALT = b"lazysession.session-id"

# Canonical unpadded URL-safe base64: an id's 36 bytes are 48 characters, every bit used;
# an id minted before ids carried a time (32 random bytes) is 43, and an HMAC-SHA1 (20
# bytes) 27: in these two the last character carries 4 bits and 2 unused ones, which
# must be 0.
_B64 = "[A-Za-z0-9_-]"
_LAST = "[AEIMQUYcgkosw048]"
ID_LENGTH = 48
_TIMED_ID = re.compile(f"{_B64}{{{ID_LENGTH}}}")
_TIME_CHARS = TIME_BYTES * 4 // 3
_LATEST_MS = 2 ** (TIME_BYTES * 8) - 1
_SIGNATURE = f"{_B64}{{26}}{_LAST}"
_SIGNED_ID = re.compile(f"(?:{_B64}{{{ID_LENGTH}}}|{_B64}{{42}}{_LAST})\\.{_SIGNATURE}")
SIGNED_ID_LENGTHS = frozenset((ID_LENGTH + 1 + 27, 43 + 1 + 27))
# Starlette's format: standard base64 of the JSON (padded), "." the timestamp, "." the
# signature. The first two are signed byte for byte, so only the signature's shape matters
# for canonicity; the whole is checked so nothing else reaches a decoder.
_SIGNED_DATA = re.compile(
    f"(?:[A-Za-z0-9+/]{{4}})*(?:[A-Za-z0-9+/]{{2}}==|[A-Za-z0-9+/]{{3}}=)?"
    f"\\.{_B64}{{1,11}}\\.{_SIGNATURE}"
)


SHORT_KEY = 32
"""Bytes below which a secret key is too easy to guess: it is used, with a warning."""


class SecretKeys:
    """One or more secret keys: the first signs, every one verifies (key rotation).

    Kept out of ``repr`` so keys do not end up in logs or tracebacks. Keys shorter than
    ``SHORT_KEY`` bytes log one warning (not an error: tests and demos use short keys).
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
        short = sum(len(key.encode("utf-8")) < SHORT_KEY for key in keys)
        if short:
            which = (
                "secret_key is"
                if len(keys) == 1
                else f"{short} of the {len(keys)} secret keys are"
                if short > 1
                else f"1 of the {len(keys)} secret keys is"
            )
            logger.warning(
                "lazysession: %s shorter than %d bytes, which makes signatures easier to "
                "guess; use random keys of 32 bytes or more, e.g. from "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
                which,
                SHORT_KEY,
            )

    def for_itsdangerous(self) -> list[str]:
        """itsdangerous signs with the *last* key of its list; ours signs with the first."""
        return list(reversed(self._keys))

    @property
    def current(self) -> str:
        return self._keys[0]

    @property
    def all(self) -> tuple[str, ...]:
        """Every key, the current one first."""
        return self._keys

    @property
    def retired(self) -> list[str]:
        return list(reversed(self._keys[1:]))

    def __repr__(self) -> str:
        return f"SecretKeys(<{len(self._keys)} hidden>)"


def new_session_id(created: float | None = None) -> str:
    """A new session's id: its creation time (``created``, seconds since the epoch; now
    if None) in milliseconds, as 6 bytes, then 30 random bytes; unpadded URL-safe
    base64, 48 characters."""
    ms = time.time_ns() // 1_000_000 if created is None else int(created * 1000)
    ms = min(max(ms, 0), _LATEST_MS)  # a clock before 1970 or past 10889: the nearest end
    raw = ms.to_bytes(TIME_BYTES, "big") + secrets.token_bytes(RANDOM_BYTES)
    return base64.urlsafe_b64encode(raw).decode("ascii")


def id_created(session_id: str) -> float | None:
    """When the session of ``session_id`` was created (seconds since the epoch, to the
    millisecond), read from the id alone; None for an id minted before ids carried a
    time, or any text that is not an id."""
    if _TIMED_ID.fullmatch(session_id) is None:
        return None
    raw = base64.urlsafe_b64decode(session_id[:_TIME_CHARS])
    return int.from_bytes(raw, "big") / 1000


def store_key(session_id: str) -> str:
    """The key a session is stored under, 64 hex digits: its creation time in
    milliseconds (12 digits) then the first 52 of a SHA-256 of its id, so sessions that
    expire together are neighbours in a store's index; for an id minted before ids
    carried a time, the whole SHA-256, as then. Either way a dump of the store holds no
    cookie that would log anyone in."""
    digest = hashlib.sha256(session_id.encode("ascii")).hexdigest()
    if _TIMED_ID.fullmatch(session_id) is None:
        return digest
    return base64.urlsafe_b64decode(session_id[:_TIME_CHARS]).hex() + digest[:52]


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
"""Cookie values each signer remembers at most."""
VERIFIED_CACHE_BYTES = 1024 * 1024
"""Characters of cookie values each signer remembers at most. (What a value verified to is
smaller than the value: an id and its hash, or the cookie's decoded JSON.)"""


class _Verified(dict[str, Any]):
    """Cookie values that verified, oldest first, within ``VERIFIED_CACHE_SIZE`` entries
    and ``VERIFIED_CACHE_BYTES`` characters: the oldest are forgotten first.

    A value that verified once verifies again under the same keys, so a returning browser
    skips the HMAC. Only canonical values that verified are kept (the signers check before
    they remember): a forged or padded value can never enter, so it can neither grow the
    process nor push out a browser's entry, and each one still costs a full check."""

    __slots__ = ("held",)

    def __init__(self) -> None:
        super().__init__()
        self.held = 0
        """Characters of the values held."""

    def remember(self, value: str, result: Any) -> None:
        size = len(value)
        while self and (
            len(self) >= VERIFIED_CACHE_SIZE or self.held + size > VERIFIED_CACHE_BYTES
        ):
            oldest = next(iter(self))
            del self[oldest]
            self.held -= len(oldest)
        self[value] = result
        self.held += size


class IdSigner:
    """Signs the random session id that server-side stores key their entries by."""

    __slots__ = ("_mac", "_retired", "_signer", "_verified")

    def __init__(self, keys: SecretKeys) -> None:
        self._verified = _Verified()
        self._signer = _CachedKeySigner(keys.current, salt=_ID_SALT)
        self._mac = HMAC(self._signer.derive_key())
        self._retired = _CachedKeySigner(keys.retired, salt=_ID_SALT) if keys.retired else None

    def sign(self, session_id: str) -> str:
        return self._mac.signed(session_id.encode("ascii"))

    def verify(self, value: str) -> tuple[str, bool, str] | None:
        """The id, whether it was signed with the current key (else re-sign it), and its
        store key (hashed once per browser, not once per request). None unless ``value``
        is, byte for byte, what ``sign`` returned (with this key or a retired one)."""
        if len(value) not in SIGNED_ID_LENGTHS:
            return None
        found: tuple[str, bool, str] | None = self._verified.get(value)
        if found is None:
            if _SIGNED_ID.fullmatch(value) is None:
                return None
            found = self._verify(value)
            if found is not None:
                self._verified.remember(value, found)
        return found

    def _verify(self, value: str) -> tuple[str, bool, str] | None:
        """``value`` has the canonical shape: check its signature."""
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
        session_id = raw.decode("ascii")  # the shape check let only base64 through
        return session_id, current, store_key(session_id)


class _ClockedTimestampSigner(itsdangerous.TimestampSigner, _CachedKeySigner):
    clock: Clock = staticmethod(utc_now)

    def get_timestamp(self) -> int:
        return int(self.clock().timestamp())


class DataSigner:
    """Signs a whole session into the cookie, in the format of Starlette's middleware,
    so swapping the middleware keeps every existing session valid. A value longer than
    a browser keeps (``BROWSER_COOKIE_LIMIT``) is never one we sent, and is not read."""

    __slots__ = ("_clock", "_mac", "_signer", "_stamp", "_verified")

    def __init__(self, keys: SecretKeys, clock: Clock = utc_now) -> None:
        self._verified = _Verified()
        self._signer = _ClockedTimestampSigner(keys.for_itsdangerous())
        self._signer.clock = clock
        self._clock = None if clock is utc_now else clock
        self._mac = HMAC(self._signer.derive_key())  # the current key: itsdangerous's last
        self._stamp = (-1, b"")
        """The last signing second and its timestamp, encoded (most writes share one)."""

    def sign(self, encoded_json: str) -> str:
        """Starlette's format: base64 of the JSON, ``.``, the signing time, ``.``, the
        signature (what ``_ClockedTimestampSigner.sign`` returns)."""
        clock = self._clock
        now = int(time.time()) if clock is None else int(clock().timestamp())
        second, stamp = self._stamp
        if now != second:
            stamp = b64url(PACK_TIME(now).lstrip(b"\x00"))
            self._stamp = (now, stamp)
        payload = binascii.b2a_base64(encoded_json.encode("utf-8"), newline=False)
        return self._mac.signed(payload + b"." + stamp)

    def unsign(self, value: str) -> tuple[dict[str, Any], float] | None:
        """The session in the cookie and when it was signed (its last write or touch);
        None unless ``value`` is, byte for byte, what ``sign`` returned under one of the
        keys."""
        if len(value) > BROWSER_COOKIE_LIMIT:
            return None
        verified: tuple[bytes, float] | None = self._verified.get(value)
        if verified is None:
            if _SIGNED_DATA.fullmatch(value) is None:
                return None
            try:
                payload, signed_at = self._signer.unsign(value, return_timestamp=True)
                verified = (base64.b64decode(payload, validate=True), signed_at.timestamp())
            except (itsdangerous.BadSignature, binascii.Error, UnicodeError, ValueError):
                return None
            self._verified.remember(value, verified)
        data = _json.loads(verified[0])  # a fresh dict each time: the handler may change it
        return None if data is None else (data, verified[1])


_ZERO_NONCE = bytes(12)
"""Each cookie has a key of its own (derived from its random bytes), used once: a fixed
nonce can never repeat under a key."""
_CIPHER_OVERHEAD = 16 + 8 + 16
"""Bytes an encrypted cookie adds to the JSON: its random bytes, the signing time, the tag."""
_ENCRYPTED_DATA = re.compile(r"[A-Za-z0-9_-]+")


class DataCipher:
    """Encrypts a whole session into the cookie (``encrypt=True`` with the cookie store);
    the same calls as ``DataSigner``. A cookie Starlette's format signed (before encryption
    was turned on) is still read, and is encrypted at its session's next write."""

    __slots__ = ("_aead", "_associated", "_keys", "_now", "_signed", "_verified")

    def __init__(self, keys: SecretKeys, cookie_name: str, clock: Clock = utc_now) -> None:
        from ._crypto import COOKIE, derive, require_cryptography

        self._aead = require_cryptography()
        self._keys = [derive(secret, COOKIE) for secret in keys.all]
        self._associated = cookie_name.encode("ascii")
        self._now = seconds_of(clock)
        self._signed = DataSigner(keys, clock)
        self._verified = _Verified()

    def sign(self, encoded_json: str) -> str:
        from ._crypto import RANDOM, b64url, subkey

        salt = secrets.token_bytes(RANDOM)
        plaintext = int(self._now()).to_bytes(8, "big") + encoded_json.encode("utf-8")
        aead = self._aead(subkey(self._keys[0], salt))
        return b64url(salt + aead.encrypt(_ZERO_NONCE, plaintext, self._associated))

    def unsign(self, value: str) -> tuple[dict[str, Any], float] | None:
        """The session in the cookie and when it was written; None unless ``value`` is,
        byte for byte, what ``sign`` returned under one of the keys (or a value
        ``DataSigner`` signed)."""
        if len(value) > BROWSER_COOKIE_LIMIT:
            return None
        if "." in value:
            return self._signed.unsign(value)
        verified: tuple[bytes, float] | None = self._verified.get(value)
        if verified is None:
            verified = self._open(value)
            if verified is None:
                return None
            self._verified.remember(value, verified)
        data = _json.loads(verified[0])  # a fresh dict each time: the handler may change it
        return None if data is None else (data, verified[1])

    def _open(self, value: str) -> tuple[bytes, float] | None:
        from cryptography.exceptions import InvalidTag

        from ._crypto import RANDOM, from_b64url, subkey

        if _ENCRYPTED_DATA.fullmatch(value) is None:
            return None
        raw = from_b64url(value)
        if raw is None or len(raw) < _CIPHER_OVERHEAD:
            return None
        salt, sealed = raw[:RANDOM], raw[RANDOM:]
        for key in self._keys:
            try:
                plaintext = self._aead(subkey(key, salt)).decrypt(
                    _ZERO_NONCE, sealed, self._associated
                )
            except InvalidTag:
                continue
            return plaintext[8:], float(int.from_bytes(plaintext[:8], "big"))
        return None
