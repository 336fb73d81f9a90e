#include "replication/redis/redis_session_scripts.h"

#include <string>

namespace sessiond {
namespace {

// Helpers every script starts with. Lua 5.1 numbers are doubles, exact for millisecond times
// and versions below 2^53; int() writes them without an exponent.
constexpr const char* kPrelude = R"lua(
local function int(n) return string.format('%d', n) end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- A session's deadline: idle timeout after the last access, capped by its lifetime.
local function deadline(created, access, idle, life)
  local d = access + idle * 1000
  if life > 0 and created + life * 1000 < d then d = created + life * 1000 end
  return d
end
-- unpack() is bounded by Lua's C stack: write long lists in slices (of whole pairs).
local function hset(key, list)
  for first = 1, #list, 1000 do
    redis.call('HSET', key, unpack(list, first, math.min(first + 999, #list)))
  end
end
local function hdel(key, list)
  for first = 1, #list, 1000 do
    redis.call('HDEL', key, unpack(list, first, math.min(first + 999, #list)))
  end
end
-- The principal index: ids scored by deadline. Dead members go whenever the set is written,
-- and the set expires with its longest-lived member, so it cannot outgrow the live sessions
-- even when no node hears an expiry.
local function index_add(prefix, principal, id, d, now)
  local k = prefix .. 'p:' .. principal
  redis.call('ZREMRANGEBYSCORE', k, '-inf', int(now))
  redis.call('ZADD', k, int(d), id)
  if redis.call('PTTL', k) < d - now then redis.call('PEXPIRE', k, int(d - now)) end
end
local function index_remove(prefix, principal, id)
  redis.call('ZREM', prefix .. 'p:' .. principal, id)
end
-- kind: 0 CREATED, 1 CHANGED, 2 EXPIRED, 3 INVALIDATED, 4 ID_CHANGED (v1.SessionEvent.Kind).
local function publish(prefix, kind, version, at, id, new_id, origin)
  redis.call('PUBLISH', prefix .. 'ev', kind .. '\n' .. int(version) .. '\n' .. int(at) .. '\n'
      .. id .. '\n' .. new_id .. '\n' .. origin)
end
)lua";

constexpr const char* kCreate = R"lua(
local key, prefix, origin, id = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', key) == 1 then return {'EXISTS'} end
local now = now_ms()
local idle, life, principal = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local fields = {'v', '1', 'c', int(now), 'a', int(now), 'i', ARGV[4]}
if life > 0 then fields[#fields + 1] = 'l'; fields[#fields + 1] = ARGV[5] end
if principal ~= '' then fields[#fields + 1] = 'p'; fields[#fields + 1] = principal end
for j = 7, #ARGV do fields[#fields + 1] = ARGV[j] end
hset(key, fields)
local d = deadline(now, now, idle, life)
redis.call('PEXPIRE', key, int(d - now))
if principal ~= '' then index_add(prefix, principal, id, d, now) end
publish(prefix, 0, 1, now, id, '', origin)
return {'OK', now}
)lua";

constexpr const char* kTouch = R"lua(
local key, prefix, id = KEYS[1], ARGV[1], ARGV[2]
local m = redis.call('HMGET', key, 'c', 'a', 'i', 'l', 'p')
if not m[1] then return {'NOT_FOUND'} end
local now = now_ms()
local created, access = tonumber(m[1]), tonumber(m[2])
local idle, life = tonumber(m[3]), tonumber(m[4] or 0)
if now > access then access = now end
local d = deadline(created, access, idle, life)
if d <= now then return {'NOT_FOUND'} end
redis.call('HSET', key, 'a', int(access))
redis.call('PEXPIRE', key, int(d - now))
if m[5] then index_add(prefix, m[5], id, d, now) end
return {'OK', redis.call('HGETALL', key)}
)lua";

constexpr const char* kUpdate = R"lua(
local key, prefix, origin, id = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local m = redis.call('HMGET', key, 'v', 'c', 'a', 'i', 'l', 'p')
if not m[1] then return {'NOT_FOUND'} end
local version = tonumber(m[1])
local expected = tonumber(ARGV[4])
if expected ~= 0 and expected ~= version then return {'CONFLICT', version} end
local n_set = tonumber(ARGV[10])
local first_remove = 11 + 2 * n_set
-- Only what differs counts as a change: setting a value an attribute already has is not one.
local changed = false
local writes, removes, added = {}, {}, 0
for j = 11, first_remove - 1, 2 do
  local old = redis.call('HGET', key, ARGV[j])
  if old ~= ARGV[j + 1] then
    if not old then added = added + 1 end
    writes[#writes + 1] = ARGV[j]
    writes[#writes + 1] = ARGV[j + 1]
  end
end
for j = first_remove, #ARGV do
  if redis.call('HEXISTS', key, ARGV[j]) == 1 then removes[#removes + 1] = ARGV[j] end
end
if #writes > 0 or #removes > 0 then changed = true end
local has_life, old_principal = m[5], m[6]
if added > #removes then
  local meta = 4 + (has_life and 1 or 0) + (old_principal and 1 or 0)
  local count = redis.call('HLEN', key) - meta + added - #removes
  if count > tonumber(ARGV[9]) then return {'TOO_MANY', count} end
end
local principal = old_principal
if ARGV[6] == '1' then
  local wanted = ARGV[7]
  if wanted == '' then wanted = false end
  if wanted ~= old_principal then changed = true; principal = wanted end
end
local idle = tonumber(m[4])
if ARGV[8] ~= '' and tonumber(ARGV[8]) ~= idle then changed = true; idle = tonumber(ARGV[8]) end
local now = now_ms()
local created, access, life = tonumber(m[2]), tonumber(m[3]), tonumber(has_life or 0)
if (changed or ARGV[5] == '1') and now > access then access = now end
local d = deadline(created, access, idle, life)
if d <= now then return {'NOT_FOUND'} end
if not changed and ARGV[5] ~= '1' then return {'OK', 0, redis.call('HGETALL', key)} end
if changed then
  version = version + 1
  writes[#writes + 1] = 'v'; writes[#writes + 1] = int(version)
  writes[#writes + 1] = 'i'; writes[#writes + 1] = int(idle)
  if principal then writes[#writes + 1] = 'p'; writes[#writes + 1] = principal end
end
writes[#writes + 1] = 'a'; writes[#writes + 1] = int(access)
if old_principal and not principal then removes[#removes + 1] = 'p' end
hset(key, writes)
if #removes > 0 then hdel(key, removes) end
redis.call('PEXPIRE', key, int(d - now))
if old_principal and old_principal ~= principal then index_remove(prefix, old_principal, id) end
if principal then index_add(prefix, principal, id, d, now) end
if changed then publish(prefix, 1, version, now, id, '', origin) end
return {'OK', changed and 1 or 0, redis.call('HGETALL', key)}
)lua";

constexpr const char* kInvalidate = R"lua(
local key, prefix, origin, id = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local m = redis.call('HMGET', key, 'v', 'p')
if not m[1] then return {'NOT_FOUND'} end
redis.call('DEL', key)
if m[2] then index_remove(prefix, m[2], id) end
publish(prefix, 3, tonumber(m[1]), now_ms(), id, '', origin)
return {'OK', tonumber(m[1])}
)lua";

constexpr const char* kRotate = R"lua(
local old_key, new_key = KEYS[1], KEYS[2]
local prefix, origin, old_id, new_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local m = redis.call('HMGET', old_key, 'v', 'p')
if not m[1] then return {'NOT_FOUND'} end
if redis.call('EXISTS', new_key) == 1 then return {'EXISTS'} end
redis.call('RENAME', old_key, new_key)  -- keeps the TTL: same deadline under the new id
local now = now_ms()
if m[2] then
  index_remove(prefix, m[2], old_id)
  index_add(prefix, m[2], new_id, now + redis.call('PTTL', new_key), now)
end
publish(prefix, 4, tonumber(m[1]), now, old_id, new_id, origin)
return {'OK', redis.call('HGETALL', new_key)}
)lua";

constexpr const char* kFind = R"lua(
local prefix, principal = ARGV[1], ARGV[2]
local k = prefix .. 'p:' .. principal
redis.call('ZREMRANGEBYSCORE', k, '-inf', int(now_ms()))
local out = {}
for _, id in ipairs(redis.call('ZRANGE', k, 0, -1)) do
  local fields = redis.call('HGETALL', prefix .. 's:' .. id)
  if #fields > 0 then
    out[#out + 1] = id
    out[#out + 1] = fields
  else
    redis.call('ZREM', k, id)  -- evicted, or deleted behind sessiond's back
  end
end
return out
)lua";

std::string WithPrelude(const char* body) { return std::string(kPrelude) + body; }

}  // namespace

RedisSessionScripts::RedisSessionScripts()
    : create_("the create script", WithPrelude(kCreate)),
      touch_("the touch script", WithPrelude(kTouch)),
      update_("the update script", WithPrelude(kUpdate)),
      invalidate_("the invalidate script", WithPrelude(kInvalidate)),
      rotate_("the rotate script", WithPrelude(kRotate)),
      find_("the find-by-principal script", WithPrelude(kFind)) {}

std::vector<RedisCommand> RedisSessionScripts::LoadAll() const {
  return {create_.Load(),     touch_.Load(),  update_.Load(),
          invalidate_.Load(), rotate_.Load(), find_.Load()};
}

}  // namespace sessiond
