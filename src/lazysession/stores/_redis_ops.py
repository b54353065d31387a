"""The session operations of the Redis store, each written once, free of I/O.

An operation is a generator of commands (a Lua script on one key, or ``HGETALL``), each
answer sent back in; the store's async and sync sides each run it with one executor.

Rules:
- One hash per session, ``<prefix><session_id>``: a field ``e`` with the expiry (ms since
  the epoch) and a field ``d:<key>`` with each session key's JSON value. Keeping keys in
  fields lets Redis merge a request's changes onto the stored copy itself.
- Every command touches one key: atomic, and legal on a cluster (a key never crosses
  slots). A rotation, which touches two, goes in steps that are each safe on their own:
  read the old key, create the new key (only if it does not exist) with the merge, then
  turn the old key into a marker (a hash with ``r``, the new key) if its version ``v``
  is still the one merged from (else merge again). Once the new key exists the login has
  succeeded: if retiring the old key fails, the old id lives on with only what it held
  before, and the browser moves to the new one. An ended session
  leaves a marker naming nothing; a logout that finds a marker naming a successor ends
  it and leaves a marker there too, so a rotation still between its two steps cannot
  create it afterwards. Markers expire after ``RETIRED_MEMORY`` seconds.
- A session's size is measured as the JSON it encodes to, each key counted unescaped.
- The key carries its TTL, so Redis deletes expired sessions itself. Reads also check
  ``e`` against the store's clock, so a session is never handed out after its expiry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Mapping
from typing import Any, TypeVar

from .. import _json
from .._errors import SessionTooLarge, StoreError
from .._expiry import META_KEY, from_timestamp
from ._base import RETIRED_MEMORY, Changes, Merge, Record, merge_onto, with_origin

T = TypeVar("T")

Command = tuple[str, str, tuple[Any, ...]]
"""``("eval", script, args)`` or ``("hgetall", "", ())``, on the operation's key."""
Op = Generator[tuple[str, Command], Any, T]
"""An operation: (key, command) pairs, each answer sent back in."""

EXPIRY = b"e"
ROTATED = b"r"
VERSION = b"v"
DATA = "d:"
_DATA_BYTES = DATA.encode()
_META_FIELD = DATA + META_KEY
_MEMORY_MS = RETIRED_MEMORY * 1000
_FOLLOW = 4
_ATTEMPTS = 5

_LIVE = """
local e = redis.call('HGET', KEYS[1], 'e')
if not e or tonumber(e) <= tonumber(ARGV[3]) then return 0 end
if redis.call('HEXISTS', KEYS[1], 'r') == 1 then return 0 end
"""

# ARGV[1] TTL in ms, ARGV[2] expiry in ms, then field/value pairs: a new session, whole.
SAVE = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'e', ARGV[2], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# ARGV: TTL ms, expiry ms, now ms, then field/value pairs: replaces a live session.
REPLACE = (
    _LIVE
    + """
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0') + 1
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'e', ARGV[2], 'v', v, unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
)

# ARGV: TTL ms, expiry ms, now ms: moves the expiry of a live session.
TOUCH = (
    _LIVE
    + """
redis.call('HSET', KEYS[1], 'e', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
)

# The max_size check of a merge, shared by UPDATE and RETIRE. ARGV[4] is the limit (0:
# none), ARGV[7] the number of removed fields, then the removed fields, then the
# field/value pairs set; ``replace`` (a local set before) drops every stored field. Returns
# minus the size the merge would have had when it is too large and larger than the stored
# session (nothing written); else goes on, with ``removed`` and ``first`` set.
_FITS = """
local removed = tonumber(ARGV[7])
local first = 8 + removed
local limit = tonumber(ARGV[4])
if limit > 0 then
  local size, fields = 1, {}
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'd:' then fields[all[i]] = #all[i] + 2 + #all[i + 1] end
  end
  local old = 1
  for _, n in pairs(fields) do old = old + n end
  if replace then fields = {} end
  for i = 8, first - 1 do fields[ARGV[i]] = nil end
  for i = first, #ARGV, 2 do fields[ARGV[i]] = #ARGV[i] + 2 + #ARGV[i + 1] end
  for _, n in pairs(fields) do size = size + n end
  if size > limit and size > old then return -size end
end
"""

# ARGV: TTL ms, expiry ms, now ms, max size (0: none), the meta field, marker TTL ms,
# number of removed fields, removed fields..., field/value pairs. 0 gone, 1 merged,
# 2 emptied (the id retired), or minus the size the merge would have had (too large;
# nothing written).
UPDATE = (
    _LIVE
    + "local replace = false\n"
    + _FITS
    + """
if removed > 0 then redis.call('HDEL', KEYS[1], unpack(ARGV, 8, first - 1)) end
if #ARGV >= first then
  redis.call('HSET', KEYS[1], 'e', ARGV[2], unpack(ARGV, first))
else
  redis.call('HSET', KEYS[1], 'e', ARGV[2])
end
redis.call('HINCRBY', KEYS[1], 'v', 1)
local held = redis.call('HLEN', KEYS[1]) - 2
if redis.call('HEXISTS', KEYS[1], ARGV[5]) == 1 then held = held - 1 end
if held <= 0 then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'r', '', 'e', tonumber(ARGV[3]) + tonumber(ARGV[6]))
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  return 2
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
)

# ARGV: marker TTL ms, the new key, now ms, the version merged from. A live session still
# at that version becomes a marker naming the new key: 1; 0 if it is gone; -1 if it
# changed meanwhile (merge again).
RETIRE = (
    _LIVE
    + """
if (redis.call('HGET', KEYS[1], 'v') or '0') ~= ARGV[4] then return -1 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'r', ARGV[2], 'e', tonumber(ARGV[3]) + tonumber(ARGV[1]))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
)

# ARGV: TTL ms, expiry ms, then field/value pairs: a new session, unless the key exists.
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'e', ARGV[2], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# ARGV: now ms, marker TTL ms, the metadata field. Ends a session (its id retired) and
# hands back {'o', the id it says it was rotated from}; for a marker, forgets its
# successor and hands back {'r', that key}: the caller ends that one too.
END = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'', ''} end
local successor = redis.call('HGET', KEYS[1], 'r')
if successor then
  redis.call('HSET', KEYS[1], 'r', '')
  return {'r', successor}
end
local origin = ''
local meta = redis.call('HGET', KEYS[1], ARGV[3])
if meta then
  local ok, value = pcall(cjson.decode, meta)
  if ok and type(value) == 'table' and type(value['o']) == 'string' then origin = value['o'] end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'r', '', 'e', tonumber(ARGV[1]) + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'o', origin}
"""

# ARGV: now ms, marker TTL ms. Turns a rotation's successor into a marker naming nothing,
# so a rotation still under way cannot create it; hands back {'r', what it named}.
BLOCK = """
local successor = redis.call('HGET', KEYS[1], 'r') or ''
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'r', '', 'e', tonumber(ARGV[1]) + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'r', successor}
"""

SCRIPTS = (SAVE, REPLACE, TOUCH, UPDATE, RETIRE, CREATE, END, BLOCK)
SHA = {script: hashlib.sha1(script.encode()).hexdigest() for script in SCRIPTS}  # noqa: S324 - Redis names scripts by SHA-1


def fields(data: Mapping[str, Any]) -> list[str]:
    """Field/value pairs for HSET; every value is encoded (or refused) before any I/O."""
    pairs: list[str] = []
    for key, value in data.items():
        pairs += (DATA + key, _json.dumps_value(key, value))
    return pairs


def decode(raw: Mapping[bytes, bytes], now_ms: int) -> Record | None:
    """The record for a hash as ``HGETALL`` hands it back (None: absent or expired)."""
    expiry = raw.get(EXPIRY)
    if not raw or expiry is None or int(expiry) <= now_ms:
        return None
    expires_at = from_timestamp(int(expiry) / 1000)
    if ROTATED in raw:
        return Record({}, expires_at, retired=True)
    data: dict[str, Any] = {}
    size = 1
    try:
        for field, value in raw.items():
            if field.startswith(_DATA_BYTES):
                data[field[len(_DATA_BYTES) :].decode("utf-8")] = _json.loads_value(value)
                size += len(field) + 2 + len(value)
    except ValueError:
        return None  # a value we did not write: treat the session as absent
    return Record(data, expires_at, size=size)


class RedisOps:
    """Every operation of the store; ``now_ms`` and the key prefix are the store's."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def read(self, sid: str, now_ms: int) -> Op[Record | None]:
        raw = yield self.prefix + sid, ("hgetall", "", ())
        return decode(raw, now_ms)

    def save(self, sid: str, data: Mapping[str, Any], now_ms: int, expiry_ms: int) -> Op[None]:
        pairs = fields(data)
        ttl = expiry_ms - now_ms
        if ttl > 0 and pairs:
            yield self.prefix + sid, ("eval", SAVE, (ttl, expiry_ms, *pairs))

    def touch(self, sid: str, now_ms: int, expiry_ms: int) -> Op[bool]:
        ttl = expiry_ms - now_ms
        if ttl <= 0:
            return False
        return bool((yield self.prefix + sid, ("eval", TOUCH, (ttl, expiry_ms, now_ms))))

    def update(self, sid: str, changes: Changes, now_ms: int, expiry_ms: int) -> Op[Merge]:
        ttl = expiry_ms - now_ms
        key = self.prefix + sid
        if ttl <= 0:
            return Merge.GONE
        if changes.replace:
            pairs = fields(changes.apply_to(None))
            done = yield key, ("eval", REPLACE, (ttl, expiry_ms, now_ms, *pairs))
            return Merge.APPLIED if done else Merge.GONE
        removed = [DATA + name for name in changes.removed]
        limit = changes.max_size or 0
        args = (ttl, expiry_ms, now_ms, limit, _META_FIELD, _MEMORY_MS, len(removed), *removed)
        done = yield key, ("eval", UPDATE, (*args, *fields(changes.set)))
        if done < 0:
            raise SessionTooLarge(-done, limit, "max_size")
        return (Merge.GONE, Merge.APPLIED, Merge.EMPTIED)[done]

    def rotate(
        self, old: str, new: str, changes: Changes, now_ms: int, expiry_ms: int
    ) -> Op[Merge]:
        ttl = expiry_ms - now_ms
        if ttl <= 0:
            return Merge.GONE
        old_key, new_key = self.prefix + old, self.prefix + new
        marker = (now_ms, _MEMORY_MS)
        created = False
        for _ in range(_ATTEMPTS):
            raw = yield old_key, ("hgetall", "", ())
            stored = decode(raw, now_ms)
            if stored is None or stored.retired:
                if created:  # a logout won meanwhile: the new id ends too
                    yield new_key, ("eval", BLOCK, marker)
                return Merge.GONE
            text = merge_onto(_json.dumps(stored.data), changes).text
            if text is None:
                yield old_key, ("eval", END, marker)
                return Merge.EMPTIED
            pairs = fields(_json.loads(with_origin(text, old)) or {})
            if created:  # the new id is ours alone until the old one names it
                yield new_key, ("eval", SAVE, (ttl, expiry_ms, *pairs))
            elif (yield new_key, ("eval", CREATE, (ttl, expiry_ms, *pairs))):
                created = True
            else:
                return Merge.GONE  # the new id is taken: a logout blocked it
            version = raw.get(VERSION, b"0")
            try:
                retired = yield old_key, ("eval", RETIRE, (_MEMORY_MS, new_key, now_ms, version))
            except StoreError:
                return Merge.APPLIED  # the new id holds the session; the browser moves there
            if retired == 1:
                return Merge.APPLIED
            if retired == 0:
                yield new_key, ("eval", BLOCK, marker)
                return Merge.GONE
        raise StoreError("rotating a session failed: it kept changing under the rotation")

    def delete(self, sid: str, now_ms: int) -> Op[None]:
        ending = (now_ms, _MEMORY_MS, _META_FIELD)
        kind, key = yield self.prefix + sid, ("eval", END, ending)
        for _ in range(_FOLLOW):
            if not key:
                return
            name = key.decode() if isinstance(key, bytes) else str(key)
            if kind in (b"r", "r"):  # the session the id was rotated to
                kind, key = yield name, ("eval", BLOCK, (now_ms, _MEMORY_MS))
            else:  # the id the session was rotated from, should it still be live
                kind, key = yield self.prefix + name, ("eval", END, ending)
