#include "replication/principal_index.h"

#include <cassert>

namespace sessiond {

const std::string* PrincipalIndex::Add(std::string_view principal, const SessionKey& key) {
  assert(!principal.empty());
  auto it = by_principal_.find(principal);
  if (it == by_principal_.end()) it = by_principal_.emplace(std::string(principal), KeySet()).first;
  if (it->second.insert(key).second) ++key_count_;
  return &it->first;
}

void PrincipalIndex::Remove(const std::string* principal, const SessionKey& key) {
  auto it = by_principal_.find(*principal);
  if (it == by_principal_.end()) return;
  key_count_ -= it->second.erase(key);
  if (it->second.empty()) by_principal_.erase(it);
}

const PrincipalIndex::KeySet* PrincipalIndex::Find(std::string_view principal) const {
  auto it = by_principal_.find(principal);
  return it == by_principal_.end() ? nullptr : &it->second;
}

}  // namespace sessiond
