#include "replication/redis/redis_session_scripts.h"

#include <string>

namespace sessiond {
namespace {

// Helpers, each script gets only those it uses (Redis creates a script's local functions at
// every call). Lua 5.1 numbers are doubles, exact for millisecond times and versions below
// 2^53; int() writes them without an exponent.
constexpr const char* kInt = R"lua(
local function int(n) return string.format('%d', n) end
)lua";

constexpr const char* kNowMs = R"lua(
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
)lua";

// touch_divisor is defined ahead of this (RedisSessionScripts::kTouchDivisor).
constexpr const char* kDeadline = R"lua(
-- The deadline a write of the access time sets: the idle timeout after that access plus one
-- touch window (reads write the access time at most once per window), capped by the lifetime.
local function deadline(created, access, idle, life)
  local d = access + idle * 1000 + math.floor(idle * 1000 / touch_divisor)
  if life > 0 and created + life * 1000 < d then d = created + life * 1000 end
  return d
end
)lua";

constexpr const char* kHsetHdel = R"lua(
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
)lua";

constexpr const char* kIndex = R"lua(
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
)lua";

constexpr const char* kPublish = R"lua(
-- kind: 0 CREATED, 1 CHANGED, 2 EXPIRED, 3 INVALIDATED, 4 ID_CHANGED (v1.SessionEvent.Kind).
local function publish(prefix, kind, version, at, id, new_id, origin)
  redis.call('PUBLISH', prefix .. 'ev', kind .. '\n' .. int(version) .. '\n' .. int(at) .. '\n'
      .. id .. '\n' .. new_id .. '\n' .. origin)
end
)lua";

constexpr const char* kCreate = R"lua(
local key, prefix, origin, id = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
if redis.call('HSETNX', key, 'v', '1') == 0 then return {'EXISTS'} end
local now = now_ms()
local idle, life, principal = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local fields = {'c', int(now), 'a', int(now), 'i', ARGV[4]}
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
local access = tonumber(m[2])
if now > access then access = now end
local d = deadline(tonumber(m[1]), access, tonumber(m[3]), tonumber(m[4] or 0))
if d <= now then return {'NOT_FOUND'} end
redis.call('HSET', key, 'a', int(access))
redis.call('PEXPIRE', key, int(d - now))
if m[5] then index_add(prefix, m[5], id, d, now) end
return {'OK', access}
)lua";

// One HGETALL gives the version, the meta fields, every old value and the attribute count; the
// reply carries it back (the hash before the update), and the node applies the request to it.
constexpr const char* kUpdate = R"lua(
local key, prefix, origin, id = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local flat = redis.call('HGETALL', key)
if #flat == 0 then return {'NOT_FOUND'} end
local h, count = {}, 0
for j = 1, #flat, 2 do
  h[flat[j]] = flat[j + 1]
  if string.byte(flat[j], 1) == 46 then count = count + 1 end  -- '.': an attribute
end
local version = tonumber(h.v)
local expected = tonumber(ARGV[4])
if expected ~= 0 and expected ~= version then return {'CONFLICT', version} end
local first_remove = 11 + 2 * tonumber(ARGV[10])
-- Only what differs counts as a change: setting a value an attribute already has is not one.
local writes, removes, added = {}, {}, 0
for j = 11, first_remove - 1, 2 do
  local old = h[ARGV[j]]
  if old ~= ARGV[j + 1] then
    if not old then added = added + 1 end
    writes[#writes + 1] = ARGV[j]
    writes[#writes + 1] = ARGV[j + 1]
  end
end
for j = first_remove, #ARGV do
  if h[ARGV[j]] then
    removes[#removes + 1] = ARGV[j]
    h[ARGV[j]] = nil  -- named twice, removed once
  end
end
local changed = #writes > 0 or #removes > 0
if added > #removes and count + added - #removes > tonumber(ARGV[9]) then
  return {'TOO_MANY', count + added - #removes}
end
local old_principal = h.p or false
local principal = old_principal
if ARGV[6] == '1' then
  local wanted = ARGV[7]
  if wanted == '' then wanted = false end
  if wanted ~= old_principal then changed = true; principal = wanted end
end
local idle = tonumber(h.i)
local new_idle = false
if ARGV[8] ~= '' and tonumber(ARGV[8]) ~= idle then
  changed = true; idle = tonumber(ARGV[8]); new_idle = true
end
local access = tonumber(h.a)
if not changed and ARGV[5] ~= '1' then return {'OK', 0, version, access, flat} end
local now = now_ms()
if now > access then access = now end
local d = deadline(tonumber(h.c), access, idle, tonumber(h.l or 0))
if d <= now then return {'NOT_FOUND'} end
if changed then
  version = version + 1
  writes[#writes + 1] = 'v'; writes[#writes + 1] = int(version)
  if new_idle then writes[#writes + 1] = 'i'; writes[#writes + 1] = int(idle) end
  if principal and principal ~= old_principal then
    writes[#writes + 1] = 'p'; writes[#writes + 1] = principal
  end
end
writes[#writes + 1] = 'a'; writes[#writes + 1] = int(access)
if old_principal and not principal then removes[#removes + 1] = 'p' end
hset(key, writes)
if #removes > 0 then hdel(key, removes) end
redis.call('PEXPIRE', key, int(d - now))
if old_principal and old_principal ~= principal then index_remove(prefix, old_principal, id) end
if principal then index_add(prefix, principal, id, d, now) end
if changed then publish(prefix, 1, version, now, id, '', origin) end
return {'OK', changed and 1 or 0, version, access, flat}
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

// The helpers `parts` name, then `body`.
std::string Script(std::initializer_list<const char*> parts, const char* body) {
  std::string source =
      "local touch_divisor = " + std::to_string(RedisSessionScripts::kTouchDivisor) + "\n";
  for (const char* part : parts) source += part;
  return source + body;
}

}  // namespace

RedisSessionScripts::RedisSessionScripts()
    : create_("the create script",
              Script({kInt, kNowMs, kDeadline, kHsetHdel, kIndex, kPublish}, kCreate)),
      touch_("the touch script", Script({kInt, kNowMs, kDeadline, kIndex}, kTouch)),
      update_("the update script",
              Script({kInt, kNowMs, kDeadline, kHsetHdel, kIndex, kPublish}, kUpdate)),
      invalidate_("the invalidate script", Script({kInt, kNowMs, kIndex, kPublish}, kInvalidate)),
      rotate_("the rotate script", Script({kInt, kNowMs, kIndex, kPublish}, kRotate)),
      find_("the find-by-principal script", Script({kInt, kNowMs}, kFind)) {}

std::vector<RedisCommand> RedisSessionScripts::LoadAll() const {
  return {create_.Load(),     touch_.Load(),  update_.Load(),
          invalidate_.Load(), rotate_.Load(), find_.Load()};
}

}  // namespace sessiond
