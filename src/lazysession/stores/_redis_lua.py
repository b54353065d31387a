"""The Lua scripts of the Redis store: each runs on one key, atomically.

The key is ``KEYS[1]``, a session's hash (see ``_redis_hash`` for its fields), or for
``INDEX`` and ``EXTEND`` an owner's index (``FIELDS``, a read for a single node only,
takes many keys); each script's arguments are listed above it.
The scripts that change a live session (those that begin with ``_LIVE``) leave one that
has expired (``e`` not after ``now``) or been retired (a field ``r``) alone, so a merge,
a touch or a replace never brings back a session that is gone. Those that move an owned
session's expiry (``_INDEXED``) never move it past the index's recorded life (``x``):
they hand back the owner instead, for the index to be extended first.
"""

from __future__ import annotations

import hashlib

_LIVE = """
local e = redis.call('HGET', KEYS[1], 'e')
if not e or tonumber(e) <= tonumber(ARGV[3]) then return 0 end
if redis.call('HEXISTS', KEYS[1], 'r') == 1 then return 0 end
"""

# ARGV[1] TTL in ms, ARGV[2] expiry in ms, then field/value pairs: a new session, whole.
_SAVE = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'e', ARGV[2], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
SAVE = _SAVE

# The same, unless the id was retired (0): an owned login, or a rotation saving its new
# id again, never brings back an id a revoke ended (or blocked before it existed).
SAVE_NEW = "if redis.call('HEXISTS', KEYS[1], 'r') == 1 then return 0 end\n" + _SAVE


def _indexed(until: int) -> str:
    """The check of a script that moves a session's expiry (``ARGV[2]``) with
    ``ARGV[until]`` the index's new recorded life: '0' when not extended yet. An owned
    session whose expiry would pass its index's recorded life ``x`` hands back its owner
    and writes nothing; once extended, ``x`` is raised."""
    return f"""
local owner = redis.call('HGET', KEYS[1], 'u')
if owner and tonumber(ARGV[2]) > tonumber(redis.call('HGET', KEYS[1], 'x') or '0') then
  if ARGV[{until}] == '0' then return owner end
  redis.call('HSET', KEYS[1], 'x', ARGV[{until}])
end
"""


# ARGV: TTL ms, expiry ms, now ms, index life ms (or '0'), then field/value pairs:
# replaces a live session's data (its owner and index life kept), or hands back its owner.
REPLACE = (
    _LIVE
    + _indexed(4)
    + """
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0') + 1
local x = redis.call('HGET', KEYS[1], 'x')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'e', ARGV[2], 'v', v, unpack(ARGV, 5))
if owner then redis.call('HSET', KEYS[1], 'u', owner, 'x', x or '0', 's', ARGV[3]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
)

# ARGV: TTL ms, expiry ms, now ms, index life ms (or '0'), the version loaded ('': any):
# moves the expiry of a live session still at that version (1; 0 if gone or written
# since), or hands back its owner.
TOUCH = (
    _LIVE
    + "if ARGV[5] ~= '' and (redis.call('HGET', KEYS[1], 'v') or '0') ~= ARGV[5] then"
    + " return 0 end\n"
    + _indexed(4)
    + """
redis.call('HSET', KEYS[1], 'e', ARGV[2])
if owner then redis.call('HSET', KEYS[1], 's', ARGV[3]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
)

# The max_size check of a merge, in UPDATE. ARGV[4] is the limit (0:
# none), ARGV[8] the number of removed fields, then the removed fields, then the
# field/value pairs set; ``replace`` (a local set before) drops every stored field. Returns
# minus the size the merge would have had when it is too large and larger than the stored
# session (nothing written); else goes on, with ``removed`` and ``first`` set.
_FITS = """
local removed = tonumber(ARGV[8])
local first = 10 + removed
local limit = tonumber(ARGV[4])
-- bytes of '"key":value,' in the session's JSON: a field is 'd:' and the raw key, and
-- JSON writes a quote or backslash in two bytes, backspace, tab, newline, form feed
-- and carriage return in two, other control characters in six
local function entry(field, value)
  local _, quoted = string.gsub(field, '["\\\\]', '')
  local _, short = string.gsub(field, '[\\b\\t\\n\\f\\r]', '')
  local _, control = string.gsub(field, '[%z\\1-\\31]', '')
  return #field + 2 + quoted + short + 5 * (control - short) + #value
end
if limit > 0 then
  local size, fields = 1, {}
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'd:' then fields[all[i]] = entry(all[i], all[i + 1]) end
  end
  local old = 1
  for _, n in pairs(fields) do old = old + n end
  if replace then fields = {} end
  for i = 10, first - 1 do fields[ARGV[i]] = nil end
  for i = first, #ARGV, 2 do fields[ARGV[i]] = entry(ARGV[i], ARGV[i + 1]) end
  for _, n in pairs(fields) do size = size + n end
  if size > limit and size > old then return -size end
end
"""

# ARGV: TTL ms, expiry ms, now ms, max size (0: none), the meta field, marker TTL ms,
# index life ms (or '0'), number of removed fields, the version loaded ('': the request
# set its own metadata), removed fields..., field/value pairs. Onto a copy written since
# that version, the stored metadata and expiry stand (the request's metadata is as it
# loaded it). 0 gone, 1 merged, 2 emptied (the id retired), 3 merged onto such a newer
# copy (its expiry kept), minus the size the merge
# would have had (too large; nothing written), or the owner (the index to be extended;
# nothing written).
UPDATE = (
    _LIVE
    + _indexed(7)
    + "local replace = false\n"
    + _FITS
    + """
local stale = ARGV[9] ~= '' and (redis.call('HGET', KEYS[1], 'v') or '0') ~= ARGV[9]
if removed > 0 then redis.call('HDEL', KEYS[1], unpack(ARGV, 10, first - 1)) end
if stale then
  local kept = {}
  for i = first, #ARGV, 2 do
    if ARGV[i] ~= ARGV[5] then
      kept[#kept + 1] = ARGV[i]
      kept[#kept + 1] = ARGV[i + 1]
    end
  end
  if #kept > 0 then redis.call('HSET', KEYS[1], unpack(kept)) end
elseif #ARGV >= first then
  redis.call('HSET', KEYS[1], 'e', ARGV[2], unpack(ARGV, first))
else
  redis.call('HSET', KEYS[1], 'e', ARGV[2])
end
if owner then redis.call('HSET', KEYS[1], 's', ARGV[3]) end
redis.call('HINCRBY', KEYS[1], 'v', 1)
-- the session's keys: every field but e, v, and the metadata, owner, seen, index life
local held = redis.call('HLEN', KEYS[1]) - 2
for _, f in ipairs({ARGV[5], 'u', 's', 'x'}) do
  if redis.call('HEXISTS', KEYS[1], f) == 1 then held = held - 1 end
end
if held <= 0 then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'r', '', 'e', tonumber(ARGV[3]) + tonumber(ARGV[6]))
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  return 2
end
if stale then return 3 end
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

# Ends the session at KEYS[1] (ARGV[1] now ms, ARGV[2] marker TTL ms, ARGV[3] the
# metadata field): it becomes a marker naming nothing, and ``origin`` holds the id its
# metadata says it was rotated from ('' if none).
_RETIRE_NAMING_ORIGIN = """
local origin = ''
local meta = redis.call('HGET', KEYS[1], ARGV[3])
if meta then
  local ok, value = pcall(cjson.decode, meta)
  if ok and type(value) == 'table' and type(value['o']) == 'string' then origin = value['o'] end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'r', '', 'e', tonumber(ARGV[1]) + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""

# ARGV: now ms, marker TTL ms, the metadata field. Ends a session (its id retired) and
# hands back {'o', the id it says it was rotated from}; for a marker, forgets its
# successor and hands back {'r', that key}: the caller ends that one too.
END = (
    """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'', ''} end
local successor = redis.call('HGET', KEYS[1], 'r')
if successor then
  redis.call('HSET', KEYS[1], 'r', '')
  return {'r', successor}
end
"""
    + _RETIRE_NAMING_ORIGIN
    + """
return {'o', origin}
"""
)

# ARGV: now ms, marker TTL ms, the metadata field. Ends a live session as END does (a
# marker, or nothing, is left as it is): what a rotation does to the id its session was
# rotated from, should that rotation have left it live.
END_LIVE = (
    """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'r') == 1 then return 0 end
"""
    + _RETIRE_NAMING_ORIGIN
    + """
return 1
"""
)

# ARGV: now ms, marker TTL ms. Turns a rotation's successor into a marker naming nothing,
# so a rotation still under way cannot create it; hands back {'r', what it named}.
BLOCK = """
local successor = redis.call('HGET', KEYS[1], 'r') or ''
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'r', '', 'e', tonumber(ARGV[1]) + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'r', successor}
"""

# ARGV: now ms, marker TTL ms, the metadata field, the owner. Revokes one member of the
# owner's index: a session of that owner ends as END ends it, handing back {1, the id it
# says it was rotated from} ({0, ...} when it had already expired); an id not yet created
# (a login under way) is retired so that it never is: {0, ''}; anything else (a marker,
# another's session) is left alone: {0, ''}.
REVOKE = (
    """
local now, memory = tonumber(ARGV[1]), tonumber(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'r', '', 'e', now + memory)
  redis.call('PEXPIRE', KEYS[1], memory)
  return {0, ''}
end
if redis.call('HGET', KEYS[1], 'u') ~= ARGV[4] then return {0, ''} end
local live = 0
if tonumber(redis.call('HGET', KEYS[1], 'e') or '0') > now then live = 1 end
"""
    + _RETIRE_NAMING_ORIGIN
    + """
return {live, origin}
"""
)

# KEYS[1] an owner's index. ARGV: login ms, the session id, TTL ms: files the session
# under its login time and makes the index live at least TTL ms; hands back its size.
INDEX = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return redis.call('ZCARD', KEYS[1])
"""

# KEYS[1] an owner's index. ARGV: TTL ms, a live session of the owner, now ms: makes the
# index live at least that long (never shorter), filing the session again should it be
# missing (the index lost, say, to an operator): a live session is always listed.
EXTEND = """
redis.call('ZADD', KEYS[1], 'NX', ARGV[3], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
"""

# ARGV: now ms, the new key. An ended id (a marker naming nothing, not yet forgotten)
# takes the new key as its successor, as a rotation's marker names it: 1; else 0.
CLAIM = """
local named = redis.call('HGET', KEYS[1], 'r')
if named ~= '' then return 0 end
local e = redis.call('HGET', KEYS[1], 'e')
if not e or tonumber(e) <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'r', ARGV[2])
return 1
"""

# KEYS: session hashes; ARGV: fields. Reads those fields of each (HMGET), for one node
# only (the keys are in any slots); writes nothing.
FIELDS = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HMGET', key, unpack(ARGV)) end
return out
"""

SCRIPTS = (
    SAVE,
    SAVE_NEW,
    REPLACE,
    TOUCH,
    UPDATE,
    RETIRE,
    CREATE,
    END,
    BLOCK,
    REVOKE,
    INDEX,
    EXTEND,
    FIELDS,
    CLAIM,
    END_LIVE,
)
SHA = {script: hashlib.sha1(script.encode()).hexdigest() for script in SCRIPTS}  # noqa: S324 - Redis names scripts by SHA-1
