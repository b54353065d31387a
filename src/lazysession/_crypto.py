"""Encrypted session data (``encrypt=True``), with the ``cryptography`` package's AES-GCM.

Rules:
- Keys derive from each secret key by HKDF-SHA256, with a distinct ``info`` per purpose
  (the cookie, stored values, their field names, the metadata's tag); none of them is the
  signing key, and none serves two purposes.
- The first secret key encrypts, every key decrypts: data written under a retired key
  stays readable while that key is listed, and is written under the first one when it is
  written again.
- Everything is authenticated. A cookie or a stored session of which anything fails to
  decrypt or to verify reads as absent, whole: never a partial session, never an error.
- No key sees enough messages for random nonces to collide: a cookie is encrypted under
  a key of its own, derived from 128 random bits it carries; a stored session's values
  under a key of that session's, derived from 128 random bits in its metadata (its
  *binding*, which moves with it when it is rotated to a new id). The ciphers of recent
  sessions are remembered, at most ``CIPHERS_CACHED`` of them.
- Server stores keep one field per session key (they merge a request's changes key by
  key). A field is named by a keyed HMAC of the key's name, so names do not leak, and a
  write or a removal addresses the same field every time; the name travels inside the
  ciphertext, and the field name is authenticated with it. The metadata entry
  (``META_KEY``) stays readable by the store (stores read ``Meta.origin``); it carries
  the binding and a tag over the binding, the session's store key and its absolute
  lifetime. So a value copied into another session, or under another field, fails to
  decrypt, and a whole session copied under another id fails its tag.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _json
from ._errors import ConfigurationError
from ._expiry import META_KEY

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from ._signing import SecretKeys
    from .stores import Changes, Record

EXTRA = "pip install 'lazysession[encryption]'"

_SALT = b"lazysession encryption v1"
COOKIE = b"lazysession cookie"
VALUES = b"lazysession values"
FIELDS = b"lazysession field names"
BINDING = b"lazysession binding"

NONCE = 12
TAG = 16
RANDOM = 16
"""Bytes of randomness a cookie's key, or a session's binding, is derived from."""
BINDING_FIELD = "s"
"""The metadata field holding a session's binding (base64)."""
TAG_FIELD = "t"
"""The metadata field holding the tag over its binding, store key and lifetime."""
_NAMES_CACHED = 4096
CIPHERS_CACHED = 1024
"""Sessions whose cipher a sealer remembers (about 3 KB each, once used both ways)."""


def require_cryptography() -> type[AESGCM]:
    """AES-GCM from ``cryptography``, or a ConfigurationError naming the extra."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise ConfigurationError(f"encrypt=True needs the cryptography package: {EXTRA}") from None
    return AESGCM


def invalid_tag() -> type[Exception]:
    """What AES-GCM raises for data that does not decrypt under a key."""
    from cryptography.exceptions import InvalidTag

    return InvalidTag


def derive(secret: str, purpose: bytes) -> bytes:
    """A 256-bit key for ``purpose`` from one secret key (HKDF-SHA256)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose)
    return hkdf.derive(secret.encode("utf-8"))


def subkey(key: bytes, salt: bytes) -> bytes:
    """The key of one cookie or one session: HMAC-SHA256 of its random ``salt``."""
    return hmac.digest(key, salt, "sha256")


def b64(raw: bytes) -> str:
    """Standard base64, for sealed values (their bytes are authenticated: no need for the
    one canonical spelling a cookie needs)."""
    return binascii.b2a_base64(raw, newline=False).decode("ascii")


def from_b64(text: object) -> bytes | None:
    """The bytes of a sealed value's base64, or None when it is not base64 text."""
    if not isinstance(text, str):
        return None
    try:
        return binascii.a2b_base64(text)
    except (binascii.Error, ValueError):  # ValueError: not ASCII
        return None


def b64url(raw: bytes) -> str:
    """Unpadded URL-safe base64."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def from_b64url(text: object) -> bytes | None:
    """The bytes of ``text`` if it is exactly what ``b64url`` makes of them, else None."""
    if not isinstance(text, str) or len(text) % 4 == 1 or not text.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if b64url(raw) == text else None


def _bound(field: str) -> bytes:
    """A value's associated data: the field it is stored under."""
    return field.encode("utf-8", "surrogatepass")


@dataclass(slots=True)
class Opened:
    """What a loaded session's next write needs to know of how it was stored."""

    binding: bytes
    stale: dict[str, list[str]] | None = None
    """Per session key, stored fields to drop when that key is next written: the field
    names a retired secret key gave it (its value is then written under the first)."""


class ValueSealer:
    """Encrypts a server-side session value by value, as the rules above say."""

    __slots__ = ("_aead", "_binding", "_ciphers", "_fields", "_invalid", "_names", "_values")

    def __init__(self, keys: SecretKeys) -> None:
        self._aead = require_cryptography()
        self._invalid = invalid_tag()
        secrets = keys.all
        self._values = [derive(secret, VALUES) for secret in secrets]
        self._fields = [derive(secret, FIELDS) for secret in secrets]
        self._binding = [derive(secret, BINDING) for secret in secrets]
        self._names: dict[str, str] = {}
        self._ciphers: dict[tuple[int, bytes], AESGCM] = {}

    def _cipher(self, index: int, binding: bytes) -> AESGCM:
        """The cipher of the session with ``binding`` under secret key ``index``. Made
        once per session and remembered (at most ``CIPHERS_CACHED``, the oldest forgotten
        first): a returning session skips the key derivation and the key schedule."""
        found = self._ciphers.get((index, binding))
        if found is None:
            found = self._aead(subkey(self._values[index], binding))
            while len(self._ciphers) >= CIPHERS_CACHED:
                self._ciphers.pop(next(iter(self._ciphers)), None)
            self._ciphers[index, binding] = found
        return found

    def field(self, name: str, index: int = 0) -> str:
        """The stored field of the session key ``name``, under secret key ``index``."""
        if index == 0:
            found = self._names.get(name)
            if found is not None:
                return found
        raw = hmac.digest(self._fields[index], name.encode("utf-8", "surrogatepass"), "sha256")
        field = b64url(raw[:16])
        if index == 0:
            if len(self._names) >= _NAMES_CACHED:  # app-chosen names: keep the memory bounded
                self._names.clear()
            self._names[name] = field
        return field

    def _tag(self, index: int, store_key: str, binding: bytes, meta: Mapping[str, Any]) -> str:
        """The tag over the binding, the store key and the absolute lifetime (``repr`` of
        each: a float reads back from JSON as the float it was)."""
        signed = f"{store_key}|{meta.get('c')!r}|{meta.get('l')!r}|{meta.get('p')!r}"
        message = binding + signed.encode("utf-8", "surrogatepass")
        return b64(hmac.digest(self._binding[index], message, "sha256")[:16])

    def _verifies(self, tag: str, store_key: str, binding: bytes, meta: Mapping[str, Any]) -> bool:
        """Whether ``tag`` is the metadata's tag under one of the secret keys."""
        return any(
            hmac.compare_digest(tag, self._tag(index, store_key, binding, meta))
            for index in range(len(self._binding))
        )

    def seal(
        self,
        values: Mapping[str, Any],
        meta: dict[str, Any],
        store_key: str,
        opened: Opened | None,
    ) -> dict[str, Any]:
        """The session as it is stored under ``store_key``: each value encrypted under its
        field, the metadata with the binding (``opened``'s, or a new one) and its tag.
        Raises ``SessionNotSerializable`` naming a key whose value JSON cannot hold."""
        binding = os.urandom(RANDOM) if opened is None else opened.binding
        aead = self._cipher(0, binding)
        nonces = os.urandom(NONCE * len(values))
        sealed: dict[str, Any] = {}
        for at, (name, value) in enumerate(values.items()):
            if name == META_KEY:
                continue  # the core's own entry, as a plain write would overwrite it
            plaintext = _json.dumps({name: value}).encode("utf-8")
            field = self.field(name)
            nonce = nonces[at * NONCE : (at + 1) * NONCE]
            sealed[field] = b64(nonce + aead.encrypt(nonce, plaintext, _bound(field)))
        sealed[META_KEY] = {
            **meta,
            BINDING_FIELD: b64(binding),
            TAG_FIELD: self._tag(0, store_key, binding, meta),
        }
        return sealed

    def open(self, record: Record, store_key: str) -> tuple[Record | None, Opened | None]:
        """The record with its session decrypted, and how it was stored; ``(None, None)``
        when anything in it fails to verify or decrypt (the session then reads as
        absent)."""
        invalid = self._invalid
        data = record.data
        meta = data.get(META_KEY)
        if not isinstance(meta, dict):
            return None, None
        binding = from_b64(meta.get(BINDING_FIELD))  # authenticated by the tag
        tag = meta.get(TAG_FIELD)
        if binding is None or len(binding) != RANDOM or not isinstance(tag, str):
            return None, None
        if not tag.isascii() or not self._verifies(tag, store_key, binding, meta):
            return None, None
        plain: dict[str, Any] = {}
        found_by: dict[str, int] = {}
        stale: dict[str, list[str]] | None = None
        for field, sealed in data.items():
            if field == META_KEY:
                continue
            raw = from_b64(sealed)
            if raw is None or len(raw) < NONCE + TAG:
                return None, None
            for index in range(len(self._values)):
                try:
                    plaintext = self._cipher(index, binding).decrypt(
                        raw[:NONCE], raw[NONCE:], _bound(field)
                    )
                except invalid:
                    continue
                break
            else:
                return None, None
            item = _json.loads(plaintext)
            if item is None or len(item) != 1:
                return None, None
            [(name, value)] = item.items()
            if self.field(name, index) != field:
                return None, None
            if index:
                stale = {} if stale is None else stale
                stale.setdefault(name, []).append(field)
            if name not in found_by or index < found_by[name]:  # a key held twice: the newer
                plain[name] = value
                found_by[name] = index
        plain[META_KEY] = {k: v for k, v in meta.items() if k not in (BINDING_FIELD, TAG_FIELD)}
        record = type(record)(plain, record.expires_at, record.version, record.size)
        return record, Opened(binding, stale)

    def changes(self, changes: Changes, sealed: Mapping[str, Any], opened: Opened | None) -> None:
        """Turn a request's ``changes`` (by session key, plain values) into the stored
        fields and their sealed values, taken from ``sealed`` (what ``seal`` returned)."""
        stale = None if opened is None else opened.stale
        written: dict[str, Any] = {}
        removed: set[str] = set()
        for name in changes.set:
            if name == META_KEY:
                written[META_KEY] = sealed[META_KEY]
                continue
            field = self.field(name)
            written[field] = sealed[field]
            if stale and name in stale:
                removed.update(stale[name])
        for name in changes.removed:
            removed.add(self.field(name))
            if stale and name in stale:
                removed.update(stale[name])
        changes.set = written
        changes.removed = frozenset(removed)
