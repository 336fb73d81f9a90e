// StoredSession: one session as the SessionStore holds it in memory.
//
// Read-only to everyone but the store. 72 bytes, which glibc serves from an 80-byte chunk;
// the attributes live in their own packed allocation and the principal is interned in the
// store's principal index, so a session without one pays only a null pointer.
#ifndef SESSIOND_REPLICATION_STORED_SESSION_H_
#define SESSIOND_REPLICATION_STORED_SESSION_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "replication/attribute_block.h"
#include "replication/session_key.h"
#include "sessiond/v1/sessiond.pb.h"

namespace sessiond {

class StoredSession {
 public:
  StoredSession(const SessionKey& key, int64_t created_ms) : key_(key), created_ms_(created_ms) {}
  StoredSession(const StoredSession&) = delete;
  StoredSession& operator=(const StoredSession&) = delete;

  const SessionKey& key() const { return key_; }
  // The id as clients know it (22 characters).
  std::string id() const { return key_.ToText(); }
  int64_t created_ms() const { return created_ms_; }
  int64_t last_access_ms() const { return last_access_ms_; }
  uint64_t version() const { return version_; }
  uint32_t max_idle_s() const { return max_idle_s_; }
  // 0 = no lifetime limit.
  uint32_t max_lifetime_s() const { return max_lifetime_s_; }
  // "" when the session has no principal.
  std::string_view principal() const {
    return principal_ == nullptr ? std::string_view() : std::string_view(*principal_);
  }
  const AttributeBlock& attributes() const { return attributes_; }

  // When the session expires: idle timeout after the last access, capped by the lifetime.
  int64_t DeadlineMs() const {
    const int64_t idle = last_access_ms_ + int64_t{max_idle_s_} * 1000;
    return max_lifetime_s_ == 0 ? idle
                                : std::min(idle, created_ms_ + int64_t{max_lifetime_s_} * 1000);
  }
  // Past its deadline: gone to every reader, even before the store reaps it.
  bool ExpiredAt(int64_t now_ms) const { return DeadlineMs() <= now_ms; }

  // The protocol form, with every attribute copied.
  v1::Session ToProto() const;

 private:
  friend class SessionStore;

  SessionKey key_;
  int64_t created_ms_;
  int64_t last_access_ms_ = 0;
  uint64_t version_ = 1;
  uint32_t max_idle_s_ = 0;
  uint32_t max_lifetime_s_ = 0;
  // Interned by the store's PrincipalIndex, which outlives every session in it; nullptr = none.
  const std::string* principal_ = nullptr;
  AttributeBlock attributes_;
  // The deadline of this session's one live entry in the expiry queue. Entries carrying any
  // other deadline are stale (see SessionStore::ExpireDue).
  int64_t queued_deadline_ms_ = 0;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_STORED_SESSION_H_
