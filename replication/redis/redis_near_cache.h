// RedisNearCache: sessions recently read from Redis, kept in this node's memory and dropped
// when Redis says they changed (CLIENT TRACKING invalidations).
//
// Only the bookkeeping lives here; RedisManager wires it to the connections. The rules that
// keep it honest:
//  - A value is cached only through a fill: BeginFill before the read is sent, EndFill with its
//    reply. An invalidation of the id that arrives in between (the read and the invalidation
//    travel on different connections, so either may come first) cancels the fill, and the
//    value is returned to its reader but not kept.
//  - Flush drops everything and cancels every fill in flight. The manager calls it whenever
//    an invalidation could have been lost: the invalidation or the tracked connection dropped.
//  - Entries past their session's deadline are never served.
//  - At most `max_entries` are kept; the least recently used goes first.
//
// Threading: not thread-safe; the manager's loop owns it.
#ifndef SESSIOND_REPLICATION_REDIS_REDIS_NEAR_CACHE_H_
#define SESSIOND_REPLICATION_REDIS_REDIS_NEAR_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sessiond/v1/sessiond.pb.h"

namespace sessiond {

class RedisNearCache {
 public:
  explicit RedisNearCache(size_t max_entries);

  // The cached session `id`, or nullptr when absent or past its deadline at `now_ms`, or, for
  // a read with `touch`, when its access time is due to be written at `now_ms`. Valid until the
  // next call that changes the cache.
  const v1::Session* Find(const std::string& id, int64_t now_ms, bool touch = false);

  // Starts a fill of `id`; pass the token to EndFill with the read's result.
  uint64_t BeginFill(const std::string& id);
  // Caches `session` if no invalidation or flush came since BeginFill returned `token`. From
  // `touch_due_ms` on, reads with touch are not served from it (they must write the access
  // time in Redis); by default they never are.
  void EndFill(const std::string& id, uint64_t token, const v1::Session& session,
               int64_t touch_due_ms = std::numeric_limits<int64_t>::min());
  // Ends a fill that read nothing (the session was not found, or the read failed).
  void AbandonFill(const std::string& id, uint64_t token);

  // Drops `id` and cancels its fills.
  void Invalidate(std::string_view id);
  // Drops every entry and cancels every fill.
  void Flush();

  size_t size() const { return entries_.size(); }
  uint64_t flushes() const { return flushes_; }
  uint64_t invalidations() const { return invalidations_; }

 private:
  struct Entry {
    v1::Session session;
    int64_t deadline_ms;
    int64_t touch_due_ms;
    std::list<std::string>::iterator lru;  // into lru_, most recent first
  };

  void Erase(std::unordered_map<std::string, Entry>::iterator it);

  const size_t max_entries_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;
  // id -> token of its newest fill in flight. An older fill of the same id finds a newer token
  // and is not kept either, which only costs a later miss.
  std::unordered_map<std::string, uint64_t> fills_;
  uint64_t next_token_ = 1;
  uint64_t flushes_ = 0;
  uint64_t invalidations_ = 0;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_REDIS_REDIS_NEAR_CACHE_H_
