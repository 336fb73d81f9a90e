#include "replication/content_digest.h"

#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

namespace sessiond {
namespace {

// FNV-1a, 64 bits.
class Fnv {
 public:
  void Add(std::string_view bytes) {
    AddNumber(bytes.size());
    for (unsigned char c : bytes) {
      hash_ ^= c;
      hash_ *= 1099511628211ull;
    }
  }
  void AddNumber(uint64_t n) {
    for (int i = 0; i < 8; ++i) {
      hash_ ^= (n >> (8 * i)) & 0xff;
      hash_ *= 1099511628211ull;
    }
  }
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 14695981039346656037ull;
};

}  // namespace

ContentDigest DigestOf(const SessionStore& store, int64_t now_ms) {
  std::vector<std::pair<std::string, const StoredSession*>> sorted;
  sorted.reserve(store.size());
  store.ForEach(now_ms, [&](const StoredSession& s) { sorted.emplace_back(s.id(), &s); });
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  Fnv fnv;
  std::vector<std::pair<std::string_view, std::string_view>> attributes;
  for (const auto& [id, s] : sorted) {
    fnv.Add(id);
    fnv.AddNumber(static_cast<uint64_t>(s->created_ms()));
    fnv.AddNumber(s->max_idle_s());
    fnv.AddNumber(s->max_lifetime_s());
    fnv.Add(s->principal());
    attributes.clear();
    for (const AttributeBlock::Attribute& a : s->attributes()) {
      attributes.emplace_back(a.name, a.value);
    }
    std::sort(attributes.begin(), attributes.end());
    fnv.AddNumber(attributes.size());
    for (const auto& [name, value] : attributes) {
      fnv.Add(name);
      fnv.Add(value);
    }
  }
  return ContentDigest{sorted.size(), fnv.value()};
}

}  // namespace sessiond
