"""The Lua scripts of the Redis store: each runs on one key, atomically.

The key is ``KEYS[1]``, a session's hash (see ``_redis_ops`` for its fields); each
script's arguments are listed above it. The scripts that change a live session (those
that begin with ``_LIVE``) leave one that has expired (``e`` not after ``now``) or been
retired (a field ``r``) alone, so a merge, a touch or a replace never brings back a
session that is gone.
"""

from __future__ import annotations

import hashlib

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
