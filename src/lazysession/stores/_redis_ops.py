"""The session operations of the Redis store, each written once, free of I/O.

An operation is a generator of commands (a Lua script on one key, or ``HGETALL``), each
answer sent back in. ``client_calls`` (``_redis_calls``) turns its commands into the client
calls that carry them out, the same for both sides; the store's async and sync sides each
have one small executor that makes those calls and hands the answers (or the failures)
back. A session's hash fields and their decoding are in ``_redis_hash``.

Rules:
- One hash per session, ``<prefix><session_id>``: a field ``e`` with the expiry (ms since
  the epoch) and a field ``d:<key>`` with each session key's JSON value. Keeping keys in
  fields lets Redis merge a request's changes onto the stored copy itself.
- Every command touches one key: atomic, and legal on a cluster (a key never crosses
  slots); one read is the exception: on a single node ``sessions_of`` reads the fields
  of all an owner's sessions in one script (``FIELDS``), on a cluster in a pipeline. A
  rotation, which touches two keys, goes in steps that are each safe on their own:
  read the old key, create the new key (only if it does not exist) with the merge, then
  turn the old key into a marker (a hash with ``r``, the new key) if its version ``v``
  is still the one merged from (else merge again). Once the new key exists the login has
  succeeded: if retiring the old key fails, the old id lives on with only what it held
  before, and the browser moves to the new one. An ended session
  leaves a marker naming nothing; a logout that finds a marker naming a successor ends
  it and leaves a marker there too, so a rotation still between its two steps cannot
  create it afterwards. Markers expire after ``RETIRED_MEMORY`` seconds.
- The key carries its TTL, so Redis deletes expired sessions itself. Reads also check
  ``e`` against the store's clock, so a session is never handed out after its expiry.

The owner index (``u``, ``s`` and ``x`` fields, a sorted set per owner) is kept by
``_redis_index``, whose operations ``RedisOps`` inherits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from .. import _json
from .._errors import ConfigurationError, SessionTooLarge, StoreError
from .._expiry import META_KEY, ORIGIN
from ._base import FOLLOW_ROTATIONS as _FOLLOW
from ._base import (
    RETIRED_MEMORY,
    Changes,
    Merge,
    Record,
    merge_onto,
    owner_of_changes,
    owner_of_data,
    with_origin,
)
from ._redis_calls import Batch, Call, Command, Op, Walk, operation
from ._redis_hash import (
    _META_FIELD,
    DATA,
    VERSION,
    decode,
    fields,
)
from ._redis_index import _OWNER_KEYS, PAGE, OwnerIndex
from ._redis_lua import (
    BLOCK,
    CLAIM,
    CREATE,
    END,
    END_LIVE,
    REPLACE,
    RETIRE,
    SAVE,
    SAVE_NEW,
    TOUCH,
    UPDATE,
)

_MEMORY_MS = RETIRED_MEMORY * 1000
_ATTEMPTS = 5


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


class RedisOps(OwnerIndex):
    """Every operation of the store, under its key prefix, timed by its clock
    (``now_ms``: milliseconds since the epoch)."""

    def __init__(self, prefix: str | Callable[[str], str], now_ms: Callable[[], int]) -> None:
        self.key: Callable[[str], str] = prefix.__add__ if isinstance(prefix, str) else prefix
        """The Redis key of a store key: the prefix, then the key (or what a callable
        prefix makes of it)."""
        self.around = key_parts(self.key)
        """What comes before and after the store key in every Redis key of the store."""
        self.now_ms = now_ms

    @operation("loading a session")
    def read(self, sid: str) -> Op[Record | None]:
        raw = yield Command(self.key(sid))
        return decode(raw, self.now_ms())

    @operation("saving a session")
    def save(self, sid: str, data: Mapping[str, Any], expires_at: datetime) -> Op[None]:
        pairs = fields(data)
        now_ms, expiry_ms = self.now_ms(), _ms(expires_at)
        ttl = expiry_ms - now_ms
        if ttl <= 0 or not pairs:
            return
        owner = owner_of_data(data)
        if owner is None:
            yield Command(self.key(sid), SAVE, (ttl, expiry_ms, *pairs))
            return
        size = yield from self._file(owner, sid, now_ms, ttl)
        owned = (*pairs, *self._owned(owner, now_ms, expiry_ms))
        yield Command(self.key(sid), SAVE_NEW, (ttl, expiry_ms, *owned))
        yield from self._tidy(owner, size)

    @operation("touching a session")
    def touch(self, sid: str, expires_at: datetime, base: object = None) -> Op[bool]:
        now_ms, expiry_ms = self.now_ms(), _ms(expires_at)
        ttl = expiry_ms - now_ms
        if ttl <= 0:
            return False
        until = 0
        loaded = base if isinstance(base, str) else ""
        for _ in range(2):
            args = (ttl, expiry_ms, now_ms, until, loaded)
            done = yield Command(self.key(sid), TOUCH, args)
            until = yield from self._extended(done, sid, expiry_ms, now_ms)
            if not until:
                return bool(done)
        raise StoreError("touching a session failed: its index kept falling short")

    @operation("saving a session")
    def update(self, sid: str, changes: Changes, expires_at: datetime) -> Op[Merge]:
        now_ms, expiry_ms = self.now_ms(), _ms(expires_at)
        ttl = expiry_ms - now_ms
        key = self.key(sid)
        if ttl <= 0:
            return Merge.GONE
        if changes.replace:
            pairs = fields(changes.apply_to(None))
            until = 0
            for _ in range(2):
                done = yield Command(key, REPLACE, (ttl, expiry_ms, now_ms, until, *pairs))
                until = yield from self._extended(done, sid, expiry_ms, now_ms)
                if not until:
                    return Merge.APPLIED if done else Merge.GONE
            raise StoreError("saving a session failed: its index kept falling short")
        removed = [DATA + name for name in changes.removed]
        limit = changes.max_size or 0
        set_pairs = fields(changes.set)
        until = 0
        loaded = "" if changes.own_meta or not isinstance(changes.base, str) else changes.base
        for _ in range(2):
            args = (ttl, expiry_ms, now_ms, limit, _META_FIELD, _MEMORY_MS, until)
            fields_ = (len(removed), loaded, *removed, *set_pairs)
            done = yield Command(key, UPDATE, (*args, *fields_))
            until = yield from self._extended(done, sid, expiry_ms, now_ms)
            if not until:
                if done < 0:
                    raise SessionTooLarge(-done, limit, "max_size")
                return (Merge.GONE, Merge.APPLIED, Merge.EMPTIED, Merge.KEPT)[done]
        raise StoreError("saving a session failed: its index kept falling short")

    @operation("rotating a session")
    def rotate(self, old: str, new: str, changes: Changes, expires_at: datetime) -> Op[Merge]:
        now_ms, expiry_ms = self.now_ms(), _ms(expires_at)
        ttl = expiry_ms - now_ms
        if ttl <= 0:
            return Merge.GONE
        old_key, new_key = self.key(old), self.key(new)
        marker = (now_ms, _MEMORY_MS)
        created = False
        size = 0
        owner = owner_of_changes(changes)
        extra = () if owner is None else self._owned(owner, now_ms, expiry_ms)
        for _ in range(_ATTEMPTS):
            raw = yield Command(old_key)
            stored = decode(raw, now_ms)
            if stored is None or stored.retired:
                if created:  # a logout won meanwhile: the new id ends too
                    yield Command(new_key, BLOCK, marker)
                return Merge.GONE
            text = merge_onto(_json.dumps(stored.data), changes).text
            if text is None:
                yield Command(old_key, END, marker)
                return Merge.EMPTIED
            meta = stored.data.get(META_KEY)
            origin = meta.get(ORIGIN) if isinstance(meta, dict) and not created else None
            if isinstance(origin, str):  # a failed rotation left it live: no more
                ending = (now_ms, _MEMORY_MS, _META_FIELD)
                yield Command(self.key(origin), END_LIVE, ending)
            pairs = (*fields(_json.loads(with_origin(text, old)) or {}), *extra)
            if created:  # the new id is ours alone until the old one names it, or a revoke
                if not (yield Command(new_key, SAVE_NEW, (ttl, expiry_ms, *pairs))):
                    return Merge.GONE  # a revoke of its owner ended it
            else:
                if owner is not None:  # filed first: a revoke_all meanwhile finds it
                    size = yield from self._file(owner, new, now_ms, ttl)
                if not (yield Command(new_key, CREATE, (ttl, expiry_ms, *pairs))):
                    return Merge.GONE  # the new id is taken: a logout (or revoke) blocked it
                created = True
            version = raw.get(VERSION, b"0")
            try:
                retired = yield Command(old_key, RETIRE, (_MEMORY_MS, new_key, now_ms, version))
            except StoreError:
                return Merge.APPLIED  # the new id holds the session; the browser moves there
            if retired == 1:
                if owner is not None:
                    yield from self._tidy(owner, size)
                return Merge.APPLIED
            if retired == 0:
                yield Command(new_key, BLOCK, marker)
                return Merge.GONE
        raise StoreError("rotating a session failed: it kept changing under the rotation")

    @operation("saving a session")
    def claim(self, ended: str, new: str) -> Op[bool]:
        done = yield Command(self.key(ended), CLAIM, (self.now_ms(), self.key(new)))
        return bool(done)

    @operation("deleting a session")
    def delete(self, sid: str) -> Op[None]:
        now_ms = self.now_ms()
        ending = (now_ms, _MEMORY_MS, _META_FIELD)
        kind, key = yield Command(self.key(sid), END, ending)
        for _ in range(_FOLLOW):
            if not key:
                return
            name = key.decode() if isinstance(key, bytes) else str(key)
            if kind in (b"r", "r"):  # the session the id was rotated to
                kind, key = yield Command(name, BLOCK, (now_ms, _MEMORY_MS))
            else:  # the id the session was rotated from, should it still be live
                kind, key = yield Command(self.key(name), END, ending)

    @operation("counting sessions", bounded=False)
    def count(self) -> Op[int]:
        """Sessions under the prefix, retired ids and owners' indexes left out: O(n) in
        the keys of the database, with one pipelined round trip per page of keys."""
        walk, total = Walk(self.pattern(), PAGE), 0
        before = len(self.around[0].encode())
        indexes = _OWNER_KEYS.encode()
        while True:
            keys = yield walk
            if not keys:
                return total
            sessions = tuple(
                Call("hexists", (k, "r")) for k in keys if not _bytes(k).startswith(indexes, before)
            )
            retired = (yield Batch(sessions)) if sessions else []
            total += sum(1 for flag in retired if not flag)

    def pattern(self) -> str:
        """A SCAN pattern that matches the store's keys: what comes before and after a
        store key, literally, around a wildcard."""
        before, after = self.around
        return _glob_literal(before) + "*" + _glob_literal(after)


def _glob_literal(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def key_parts(key: Callable[[str], str]) -> tuple[str, str]:
    """What a store's key function puts before and after a store key; a
    ``ConfigurationError`` for one that does not keep the store key whole, once, or that
    adds nothing (the sessions would share Redis's keyspace with everything else)."""
    probe = "\x00"
    made = key(probe)
    if not isinstance(made, str) or made.count(probe) != 1 or made == probe:
        raise ConfigurationError(
            "RedisStore: a callable prefix takes the session's store key and returns the "
            "Redis key: the store key once, with something before or after it"
        )
    before, _, after = made.partition(probe)
    return before, after
