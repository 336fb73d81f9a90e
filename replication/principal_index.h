// PrincipalIndex: principal (the user a session belongs to) -> the ids of their sessions.
//
// Serves FindByPrincipal ("log this user out everywhere"). The store keeps it exact: an id is
// removed when its session is invalidated, expires, is renamed or changes principal, and a
// principal whose last session goes is erased, so the index never outgrows the live sessions.
// It also interns each principal string once, and sessions point at that copy.
//
// Not thread-safe: owned by the SessionStore, on its loop.
#ifndef SESSIOND_REPLICATION_PRINCIPAL_INDEX_H_
#define SESSIOND_REPLICATION_PRINCIPAL_INDEX_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "replication/session_key.h"

namespace sessiond {

class PrincipalIndex {
 public:
  using KeySet = std::unordered_set<SessionKey, SessionKeyHash>;

  // Files `key` under `principal` (REQUIRES: not empty) and returns the index's copy of the
  // principal, which stays valid until the last key under it is removed.
  const std::string* Add(std::string_view principal, const SessionKey& key);

  // Unfiles `key` from `principal` (a pointer Add returned); erases the principal when it has
  // no key left.
  void Remove(const std::string* principal, const SessionKey& key);

  // The keys filed under `principal`, or nullptr when none is. Valid until the next change.
  const KeySet* Find(std::string_view principal) const;

  // Distinct principals, and keys over all of them: what tests check for leaks.
  size_t principal_count() const { return by_principal_.size(); }
  size_t key_count() const { return key_count_; }

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };

  // Node-based, so the address of each key string (what sessions hold) never moves.
  std::unordered_map<std::string, KeySet, StringHash, std::equal_to<>> by_principal_;
  size_t key_count_ = 0;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_PRINCIPAL_INDEX_H_
