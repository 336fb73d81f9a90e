// RedisSessionScripts: the Lua scripts that change sessions in Redis, each one atomic and one
// round trip (see RedisSessionLayout for the keys they touch, docs/redis.md for why).
//
// Every script reads the time from Redis (TIME), so all nodes share one clock for created and
// access times, deadlines and index scores, whatever their own clocks say. Every change
// PUBLISHes its event on the events channel inside the script, so events reach subscribers in
// the order Redis applied the changes. Replies are arrays whose first element is a status word:
//
//   create      KEYS session-key; ARGV prefix origin id max_idle_s max_lifetime_s principal
//               [field value]...                    -> {"OK", created_ms} | {"EXISTS"}
//   touch       KEYS session-key; ARGV prefix id    -> {"OK", access_ms} | {"NOT_FOUND"}
//   update      KEYS session-key; ARGV prefix origin id expected_version touch(0|1)
//               has_principal(0|1) principal max_idle_s("" = keep) max_attributes n_set
//               [field value]*n_set [field]...
//               -> {"OK", changed(0|1), version, access_ms, fields before the update} |
//               {"NOT_FOUND"} | {"CONFLICT", version} | {"TOO_MANY", attributes}
//   invalidate  KEYS session-key; ARGV prefix origin id -> {"OK", version} | {"NOT_FOUND"}
//   rotate      KEYS old-key new-key; ARGV prefix origin old-id new-id
//               -> {"OK", fields} | {"NOT_FOUND"} | {"EXISTS"}
//   find        ARGV prefix principal               -> {id, fields, id, fields, ...}
//
// where fields is the session hash as HGETALL returns it. The scripts name principal-index
// and (in find) session keys they compute, which a single Redis allows and Redis Cluster does
// not; sessiond does not support Redis Cluster.
//
// Deadlines: every script that writes the access time sets the key's TTL to the idle timeout
// plus one touch window (max_idle_s / kTouchDivisor) after it, capped by the lifetime; reads
// write the access time only once the last write is a window old (RedisManager), so a session
// never expires earlier than its idle timeout after its last access, and at most one window
// later.
#ifndef SESSIOND_REPLICATION_REDIS_REDIS_SESSION_SCRIPTS_H_
#define SESSIOND_REPLICATION_REDIS_REDIS_SESSION_SCRIPTS_H_

#include <vector>

#include "replication/redis/redis_script.h"

namespace sessiond {

class RedisSessionScripts {
 public:
  // A read with touch writes the access time only when the stored one is max_idle_s /
  // kTouchDivisor old, as delta mode replicates touches.
  static constexpr int kTouchDivisor = 4;

  RedisSessionScripts();

  const RedisScript& create() const { return create_; }
  const RedisScript& touch() const { return touch_; }
  const RedisScript& update() const { return update_; }
  const RedisScript& invalidate() const { return invalidate_; }
  const RedisScript& rotate() const { return rotate_; }
  const RedisScript& find() const { return find_; }

  // SCRIPT LOAD for every script, for a new connection to send before it serves.
  std::vector<RedisCommand> LoadAll() const;

 private:
  RedisScript create_;
  RedisScript touch_;
  RedisScript update_;
  RedisScript invalidate_;
  RedisScript rotate_;
  RedisScript find_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_REDIS_REDIS_SESSION_SCRIPTS_H_
