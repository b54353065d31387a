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

The owner index:
- An owned session's hash also holds ``u``, its owner, ``s``, when it was last seen
  (ms), and ``x``, the time until which its owner's index is known to live. Each owner
  has a sorted set ``<prefix>owner:<owner>`` (never a session key: those are hex
  digits; ``count`` leaves these out), its members session ids scored by login time
  (ms). Session keys and index keys are in different slots of a cluster: every step
  touches one key, as above.
- A login with an owner (``save``, or ``rotate`` to an owned id) files the new id in the
  index first (``INDEX``: one more round trip; none for anonymous sessions) and only
  then creates the session, refusing an id that was retired meanwhile (``SAVE_NEW``,
  ``CREATE``): a ``revoke_all`` that ran in between found the id and retired it before
  it existed. So a live owned session is always a member of its owner's index.
- ``sessions_of`` reads the members, then a few fields of each session (a thousand at a
  time: one script on a single node, a pipeline that redis-py splits by node on a
  cluster), lists those live and owned by that owner, and removes the members that are
  dead: retired, expired, another's, or absent and filed more than ``RETIRED_MEMORY``
  seconds ago (a younger absent one may be a login between its two steps). ``revoke``
  and ``revoke_all`` run ``REVOKE`` on each member they name (pipelined): it ends a
  session of that owner as ``delete`` does (then the id it says it was rotated from is
  ended too), retires an id not yet created, and leaves anything else alone; then the
  members are removed. A login that completed before ``revoke_all`` read the index is
  ended; one racing it is ended or listed.
- The index never dies before its sessions, nor lives long after them: each login makes
  it live at least the session's TTL plus ``INDEX_SLACK`` (its TTL only ever lengthens)
  and records that life in ``x``. A ``touch``, ``update`` or replace that would move an
  owned session's expiry past ``x`` writes nothing and hands back the owner; the
  operation extends the index (``EXTEND``, which also files the session again should its
  member be missing) and sends the write again, which raises ``x``: two more round
  trips, at most once per ``INDEX_SLACK`` of a session's life. The index expires at
  most ``INDEX_SLACK`` after the latest expiry any of its sessions was given. Every
  store's clock is taken to agree, as for expiry. Dead members are dropped by
  ``sessions_of`` and ``revoke``, and by a login that finds the index grown to a power
  of two of at least ``PRUNE_FROM`` members (among its ``PAGE`` oldest, once the session
  is created: a failure there is not the login's).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from .. import _json
from .._errors import ConfigurationError, SessionTooLarge, StoreError
from .._expiry import META_KEY, from_timestamp
from .._identity import SessionInfo, handle_of
from ._base import FOLLOW_ROTATIONS as _FOLLOW
from ._base import (
    RETIRED_MEMORY,
    Changes,
    Merge,
    Record,
    merge_onto,
    most_recent_first,
    owner_of_changes,
    owner_of_data,
    session_info,
    with_origin,
)
from ._redis_calls import Batch, Call, Command, Commands, Fields, Op, Walk, operation
from ._redis_hash import (
    _META_FIELD,
    DATA,
    EXPIRY,
    INDEX_LIFE,
    OWNER,
    SEEN,
    VERSION,
    decode,
    fields,
)
from ._redis_lua import (
    BLOCK,
    CREATE,
    END,
    EXTEND,
    INDEX,
    REPLACE,
    RETIRE,
    REVOKE,
    SAVE,
    SAVE_NEW,
    TOUCH,
    UPDATE,
)

_MEMORY_MS = RETIRED_MEMORY * 1000
_ATTEMPTS = 5
INDEX_SLACK = 24 * 60 * 60 * 1000
"""Milliseconds an owner's index is made to live past the session that extends it: a
session touched all the time extends its index once per ``INDEX_SLACK`` of its life."""
PRUNE_FROM = 64
"""Members from which a login that finds the index at a power of two prunes it."""
_OWNER_KEYS = "owner:"
_LISTED = (EXPIRY, OWNER, SEEN, _META_FIELD.encode())
"""The fields ``sessions_of`` reads of each member (a retired id holds no owner)."""


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


PAGE = 1000
"""Keys a walk asks for per SCAN, and checks per round trip."""


class RedisOps:
    """Every operation of the store, under its key prefix, timed by its clock
    (``now_ms``: milliseconds since the epoch)."""

    def __init__(self, prefix: str | Callable[[str], str], now_ms: Callable[[], int]) -> None:
        self.key: Callable[[str], str] = prefix.__add__ if isinstance(prefix, str) else prefix
        """The Redis key of a store key: the prefix, then the key (or what a callable
        prefix makes of it)."""
        self.around = key_parts(self.key)
        """What comes before and after the store key in every Redis key of the store."""
        self.now_ms = now_ms

    def index_key(self, owner: str) -> str:
        """The key of ``owner``'s index."""
        return self.key(_OWNER_KEYS + owner)

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

    def _owned(self, owner: str, now_ms: int, expiry_ms: int) -> tuple[Any, ...]:
        """The fields of a new owned session besides its data."""
        return (SEEN, now_ms, OWNER, owner, INDEX_LIFE, expiry_ms + INDEX_SLACK)

    def _file(self, owner: str, sid: str, now_ms: int, ttl: int) -> Op[int]:
        """File a login's new id in its owner's index (before the session exists); the
        index's size."""
        size: int = yield Command(self.index_key(owner), INDEX, (now_ms, sid, ttl + INDEX_SLACK))
        return size

    def _tidy(self, owner: str, size: int) -> Op[None]:
        """After a login, prune the oldest ``PAGE`` members of an index that has grown to
        a power of two of at least ``PRUNE_FROM``: housekeeping, whose failure the login
        never reports."""
        if size >= PRUNE_FROM and size & (size - 1) == 0:
            with contextlib.suppress(StoreError):
                yield from self._listing(owner, prune=True, limit=PAGE)

    def _extended(self, done: Any, sid: str, expiry_ms: int, now_ms: int) -> Op[int]:
        """After a write that handed back an owner (``done``), extend that owner's index
        to live ``INDEX_SLACK`` past ``expiry_ms``: the index life to send the write with
        again. (0 when the write answered otherwise.)"""
        if not isinstance(done, (bytes, str)):
            return 0
        owner = done.decode() if isinstance(done, bytes) else done
        until = expiry_ms + INDEX_SLACK
        yield Command(self.index_key(owner), EXTEND, (until - now_ms, sid, now_ms))
        return until

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

    @operation("listing an owner's sessions")
    def sessions_of(self, owner: str) -> Op[list[SessionInfo]]:
        live = yield from self._listing(owner, prune=True)
        return most_recent_first(live)

    def _listing(self, owner: str, *, prune: bool, limit: int = 0) -> Op[list[SessionInfo]]:
        """The owner's live sessions (with ``limit``, among the oldest ``limit`` members
        only); with ``prune``, the dead members are dropped from the index (see the rules
        above)."""
        now_ms = self.now_ms()
        index = self.index_key(owner)
        members = yield Command(index, args=(0, limit - 1, False, True), method="zrange")
        found: list[SessionInfo] = []
        dead: list[bytes] = []
        for start in range(0, len(members), PAGE):
            page = members[start : start + PAGE]
            keys = tuple(self.key(_text(sid)) for sid, _ in page)
            answers = yield Fields(keys, _LISTED)
            for (sid, filed), (expiry, held_by, seen, meta) in zip(page, answers, strict=True):
                if expiry is None:  # absent: dead, unless a login is still creating it
                    if filed < now_ms - _MEMORY_MS:
                        dead.append(sid)
                    continue
                expiry_ms = int(expiry)
                if expiry_ms <= now_ms or held_by is None or _text(held_by) != owner:
                    dead.append(sid)
                    continue
                text = b'{"' + META_KEY.encode() + b'":' + (meta or b"null") + b"}"
                last_seen = int(seen) if seen is not None else int(filed)
                found.append(
                    session_info(
                        _text(sid),
                        text,
                        from_timestamp(expiry_ms / 1000),
                        from_timestamp(last_seen / 1000),
                    )
                )
        if prune and dead:
            with contextlib.suppress(StoreError):  # housekeeping: the listing stands
                yield Command(index, args=tuple(dead), method="zrem", writes=True)
        return found

    @operation("revoking sessions")
    def revoke(self, owner: str, handle: str | None, keep: str | None) -> Op[int]:
        """End the owner's session named ``handle`` (None: every one but ``keep``); how
        many live sessions were ended."""
        now_ms = self.now_ms()
        index = self.index_key(owner)
        members = yield Command(index, args=(0, -1), method="zrange")
        named = []
        for sid in members:
            member = handle_of(_text(sid))
            if (handle is None or member == handle) and member != keep:
                named.append(sid)
        ended = 0
        for start in range(0, len(named), PAGE):
            page = named[start : start + PAGE]
            args = (now_ms, _MEMORY_MS, _META_FIELD, owner)
            answers = yield Commands(
                tuple(Command(self.key(_text(sid)), REVOKE, args) for sid in page)
            )
            origins = [_text(origin) for live, origin in answers if origin]
            ended += sum(int(live) for live, _ in answers)
            if origins:  # the ids they were rotated from, should those still be live
                ending = (now_ms, _MEMORY_MS, _META_FIELD)
                yield Commands(tuple(Command(self.key(o), END, ending) for o in origins))
            yield Command(index, args=tuple(page), method="zrem", writes=True)
        return ended

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
