// RedisSessionLayout: how sessions, the principal index and events look inside Redis.
// docs/redis.md explains the choices; the Lua scripts (RedisSessionScripts) write this layout
// and this class reads it.
//
//   <prefix>s:<id>         hash: the session. Meta fields are one letter (v version,
//                          c created_ms, a last_access_ms, i max_idle_s, l max_lifetime_s when
//                          set, p principal when set); attribute <name> is field ".<name>". Its
//                          PEXPIRE is the session's deadline, min(idle, lifetime).
//   <prefix>p:<principal>  sorted set: the principal's session ids, scored by their deadlines
//                          (ms); it expires with its last session.
//   <prefix>ev             pub/sub channel of SessionEvents (EncodeEvent's text form).
//
// Stateless and thread-safe.
#ifndef SESSIOND_REPLICATION_REDIS_REDIS_SESSION_LAYOUT_H_
#define SESSIOND_REPLICATION_REDIS_REDIS_SESSION_LAYOUT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "replication/redis/redis_reply.h"
#include "sessiond/status.h"
#include "sessiond/v1/sessiond.pb.h"

namespace sessiond {

class RedisSessionLayout {
 public:
  // `prefix` starts every key and channel sessiond uses, so several clusters can share one
  // Redis database; `db` is the database, which names its keyspace notification channels.
  RedisSessionLayout(std::string prefix, uint32_t db);

  const std::string& prefix() const { return prefix_; }
  std::string SessionKey(std::string_view id) const { return session_prefix_ + std::string(id); }
  std::string PrincipalKey(std::string_view principal) const {
    return prefix_ + "p:" + std::string(principal);
  }
  // The session id a session key names, or nullopt for any other key.
  std::optional<std::string_view> IdOfKey(std::string_view key) const;

  const std::string& events_channel() const { return events_channel_; }
  // Keyspace notification channels: keys that expired, and keys evicted under maxmemory.
  const std::string& expired_channel() const { return expired_channel_; }
  const std::string& evicted_channel() const { return evicted_channel_; }
  // Where CLIENT TRACKING sends invalidations in RESP2 redirect mode.
  static constexpr std::string_view kInvalidateChannel = "__redis__:invalidate";

  // The hash field of attribute `name`.
  static std::string AttributeField(std::string_view name) {
    std::string field;
    field.reserve(name.size() + 1);
    field.push_back('.');
    field.append(name);
    return field;
  }

  // The session `id` from its hash's fields as HGETALL returns them (a flat array of names and
  // values). INTERNAL when the hash lacks the meta fields this layout needs.
  static Result<v1::Session> DecodeSession(std::string id, const RedisReply& fields);

  // The text form of an event on the events channel:
  // "<kind>\n<version>\n<at_ms>\n<id>\n<new_id>\n<origin_node>". The scripts build it in Lua.
  static std::string EncodeEvent(const v1::SessionEvent& event);
  // The event `payload` encodes, or nullopt when it is not one.
  static std::optional<v1::SessionEvent> DecodeEvent(std::string_view payload);

 private:
  std::string prefix_;
  std::string session_prefix_;
  std::string events_channel_;
  std::string expired_channel_;
  std::string evicted_channel_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_REDIS_REDIS_SESSION_LAYOUT_H_
