#include "replication/backup/placement.h"

#include <algorithm>
#include <utility>

namespace sessiond {
namespace {

// splitmix64's finalizer: a full-avalanche mix of 64 bits.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

// FNV-1a: stable, unlike std::hash.
uint64_t HashName(std::string_view name) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return h;
}

bool Contains(const std::vector<std::string>& list, std::string_view node) {
  return std::find(list.begin(), list.end(), node) != list.end();
}

}  // namespace

uint64_t RendezvousScore(const SessionKey& key, std::string_view node) {
  return Mix(key.Hash() ^ Mix(HashName(node)));
}

std::vector<std::string> PickByRendezvous(const SessionKey& key,
                                          const std::vector<std::string>& candidates,
                                          const std::vector<std::string>& exclude, size_t k) {
  std::vector<std::pair<uint64_t, const std::string*>> scored;
  scored.reserve(candidates.size());
  for (const std::string& node : candidates) {
    if (Contains(exclude, node)) continue;
    bool seen = false;
    for (const auto& [score, other] : scored) seen = seen || *other == node;
    if (!seen) scored.emplace_back(RendezvousScore(key, node), &node);
  }
  // Ties (astronomically rare) fall back to the name, so the order is total.
  std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : *a.second < *b.second;
  });
  std::vector<std::string> picked;
  for (size_t i = 0; i < scored.size() && picked.size() < k; ++i) {
    picked.push_back(*scored[i].second);
  }
  return picked;
}

std::vector<std::string> RefillBackups(const SessionKey& key, std::string_view primary,
                                       const std::vector<std::string>& keep,
                                       const std::vector<std::string>& live, size_t k) {
  std::vector<std::string> backups;
  for (const std::string& node : keep) {
    if (backups.size() >= k) break;
    if (node == primary || !Contains(live, node) || Contains(backups, node)) continue;
    backups.push_back(node);
  }
  if (backups.size() < k) {
    std::vector<std::string> exclude = backups;
    exclude.emplace_back(primary);
    for (std::string& node : PickByRendezvous(key, live, exclude, k - backups.size())) {
      backups.push_back(std::move(node));
    }
  }
  return backups;
}

}  // namespace sessiond
