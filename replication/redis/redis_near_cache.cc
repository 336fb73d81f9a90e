#include "replication/redis/redis_near_cache.h"

#include <algorithm>

namespace sessiond {
namespace {

int64_t DeadlineOf(const v1::Session& s) {
  const int64_t idle = s.last_access_ms() + int64_t{s.max_idle_s()} * 1000;
  return s.max_lifetime_s() == 0
             ? idle
             : std::min(idle, s.created_ms() + int64_t{s.max_lifetime_s()} * 1000);
}

}  // namespace

RedisNearCache::RedisNearCache(size_t max_entries)
    : max_entries_(std::max<size_t>(1, max_entries)) {}

const v1::Session* RedisNearCache::Find(const std::string& id, int64_t now_ms, bool touch) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return nullptr;
  if (it->second.deadline_ms <= now_ms) {
    Erase(it);
    return nullptr;
  }
  if (touch && it->second.touch_due_ms <= now_ms) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return &it->second.session;
}

uint64_t RedisNearCache::BeginFill(const std::string& id) {
  const uint64_t token = next_token_++;
  fills_[id] = token;
  return token;
}

void RedisNearCache::EndFill(const std::string& id, uint64_t token, const v1::Session& session,
                             int64_t touch_due_ms) {
  auto fill = fills_.find(id);
  if (fill == fills_.end() || fill->second != token) return;  // invalidated meanwhile
  fills_.erase(fill);
  if (auto it = entries_.find(id); it != entries_.end()) Erase(it);
  while (entries_.size() >= max_entries_) Erase(entries_.find(lru_.back()));
  lru_.push_front(id);
  entries_.emplace(id, Entry{session, DeadlineOf(session), touch_due_ms, lru_.begin()});
}

void RedisNearCache::AbandonFill(const std::string& id, uint64_t token) {
  auto fill = fills_.find(id);
  if (fill != fills_.end() && fill->second == token) fills_.erase(fill);
}

void RedisNearCache::Invalidate(std::string_view id) {
  ++invalidations_;
  const std::string key(id);
  fills_.erase(key);
  if (auto it = entries_.find(key); it != entries_.end()) Erase(it);
}

void RedisNearCache::Flush() {
  ++flushes_;
  entries_.clear();
  lru_.clear();
  fills_.clear();
}

void RedisNearCache::Erase(std::unordered_map<std::string, Entry>::iterator it) {
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

}  // namespace sessiond
