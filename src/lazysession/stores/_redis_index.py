"""The owner index of the Redis store: which sessions each owner holds, kept beside them.

Rules:
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
from collections.abc import Callable
from typing import Any

from .._errors import StoreError
from .._expiry import META_KEY, from_timestamp
from .._identity import SessionInfo, handle_of
from ._base import RETIRED_MEMORY, most_recent_first, session_info
from ._redis_calls import Command, Commands, Fields, Op, operation
from ._redis_hash import _META_FIELD, EXPIRY, INDEX_LIFE, OWNER, SEEN
from ._redis_lua import END, EXTEND, INDEX, REVOKE

_MEMORY_MS = RETIRED_MEMORY * 1000
INDEX_SLACK = 24 * 60 * 60 * 1000
"""Milliseconds an owner's index is made to live past the session that extends it: a
session touched all the time extends its index once per ``INDEX_SLACK`` of its life."""
PRUNE_FROM = 64
"""Members from which a login that finds the index at a power of two prunes it."""
_OWNER_KEYS = "owner:"
_LISTED = (EXPIRY, OWNER, SEEN, _META_FIELD.encode())
"""The fields ``sessions_of`` reads of each member (a retired id holds no owner)."""

PAGE = 1000
"""Keys a walk asks for per SCAN, and checks per round trip."""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class OwnerIndex:
    """The owner index's operations, and the steps the session operations take to keep
    it (``RedisOps`` inherits them)."""

    key: Callable[[str], str]
    now_ms: Callable[[], int]

    def index_key(self, owner: str) -> str:
        """The key of ``owner``'s index."""
        return self.key(_OWNER_KEYS + owner)

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
