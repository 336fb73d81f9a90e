#include "replication/delta/stamp_table.h"

#include <algorithm>
#include <utility>

namespace sessiond {
namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

uint64_t Fnv(std::string_view bytes, uint64_t hash = kFnvOffset) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= kFnvPrime;
  }
  return hash;
}

// splitmix64's finalizer: spreads every input bit over the output, so XORs of stamp hashes do
// not cancel by accident.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

}  // namespace

bool StampAfter(const Stamp& a, const Stamp& b) {
  if (a.clock != b.clock) return a.clock > b.clock;
  return a.node > b.node;
}

uint32_t StampTable::Bucket(std::string_view session) {
  return static_cast<uint32_t>(Mix(Fnv(session)) % kBuckets);
}

StampTable::StampTable(size_t max_removed_ids)
    : max_removed_ids_(std::max<size_t>(1, max_removed_ids)), nodes_{""}, node_hashes_{Fnv("")} {}

uint32_t StampTable::Intern(std::string_view node) {
  // A cluster has a handful of nodes: a linear scan beats a map here.
  for (uint32_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i] == node) return i;
  }
  nodes_.emplace_back(node);
  node_hashes_.push_back(Fnv(node));
  return static_cast<uint32_t>(nodes_.size() - 1);
}

uint64_t StampTable::EntryHash(uint64_t id_hash, const Entry& e) const {
  uint64_t h = Fnv(e.name, id_hash ^ static_cast<uint64_t>(e.field));
  h = Mix(h ^ e.clock);
  h = Mix(h ^ node_hashes_[e.node]);
  return Mix(h ^ (e.removed ? 1 : 0));
}

void StampTable::ToggleAll(std::string_view session, const SessionStamps& stamps) {
  const uint64_t id_hash = Fnv(session);
  uint64_t& bucket = buckets_[Bucket(session)];
  for (const Entry& e : stamps.entries) bucket ^= EntryHash(id_hash, e);
}

const StampTable::Entry* StampTable::FindEntry(std::string_view session, StampedField field,
                                               std::string_view name) const {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return nullptr;
  for (const Entry& e : it->second.entries) {
    if (e.field == field && e.name == name) return &e;
  }
  return nullptr;
}

Stamp StampTable::Get(std::string_view session, StampedField field, std::string_view name) const {
  const Entry* e = FindEntry(session, field, name);
  if (e == nullptr) return Stamp{};
  return Stamp{e->clock, nodes_[e->node]};
}

void StampTable::Set(std::string_view session, StampedField field, std::string_view name,
                     uint64_t clock, std::string_view node, bool removed) {
  const uint32_t index = Intern(node);
  auto it = sessions_.find(session);
  if (it == sessions_.end()) it = sessions_.emplace(std::string(session), SessionStamps{}).first;
  SessionStamps& stamps = it->second;
  const uint64_t id_hash = Fnv(session);
  uint64_t& bucket = buckets_[Bucket(session)];
  for (Entry& e : stamps.entries) {
    if (e.field == field && e.name == name) {
      bucket ^= EntryHash(id_hash, e);
      e.clock = clock;
      e.node = index;
      e.removed = removed;
      bucket ^= EntryHash(id_hash, e);
      return;
    }
  }
  stamps.entries.push_back(Entry{std::string(name), clock, index, field, removed});
  bucket ^= EntryHash(id_hash, stamps.entries.back());
}

void StampTable::Adopt(std::string_view session, const std::vector<StampRecord>& records,
                       int64_t touch_sent_ms) {
  // Adopted sessions are mostly new here: one hash, no lookup before the insert.
  SessionStamps& stamps = sessions_.try_emplace(std::string(session)).first->second;
  stamps.touch_sent_ms = touch_sent_ms;
  ToggleAll(session, stamps);
  stamps.entries.clear();
  stamps.entries.reserve(records.size());
  for (const StampRecord& r : records) {
    stamps.entries.push_back(
        Entry{std::string(r.name), r.clock, Intern(r.node), r.field, r.removed});
  }
  ToggleAll(session, stamps);
}

bool StampTable::IsTombstone(std::string_view session, std::string_view name) const {
  const Entry* e = FindEntry(session, StampedField::kAttribute, name);
  return e != nullptr && e->removed;
}

void StampTable::ForEach(
    std::string_view session,
    const std::function<void(StampedField, std::string_view, const Stamp&, bool)>& fn) const {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  for (const Entry& e : it->second.entries) {
    fn(e.field, e.name, Stamp{e.clock, nodes_[e.node]}, e.removed);
  }
}

int64_t StampTable::touch_sent_ms(std::string_view session) const {
  auto it = sessions_.find(session);
  return it == sessions_.end() ? 0 : it->second.touch_sent_ms;
}

void StampTable::set_touch_sent_ms(std::string_view session, int64_t ms) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) it = sessions_.emplace(std::string(session), SessionStamps{}).first;
  it->second.touch_sent_ms = ms;
}

void StampTable::Remove(std::string_view session) {
  auto it = sessions_.find(session);
  if (it != sessions_.end()) {
    ToggleAll(session, it->second);
    sessions_.erase(it);
  }
  if (removed_.contains(session)) return;
  removed_order_.emplace_back(session);
  removed_.insert(removed_order_.back());
  while (removed_order_.size() > max_removed_ids_) {
    removed_.erase(removed_order_.front());
    removed_order_.pop_front();
  }
}

void StampTable::Rename(std::string_view session, std::string_view new_id) {
  auto it = sessions_.find(session);
  if (it != sessions_.end()) {
    SessionStamps stamps = std::move(it->second);
    ToggleAll(session, stamps);
    sessions_.erase(it);
    ToggleAll(new_id, stamps);
    auto [target, inserted] = sessions_.try_emplace(std::string(new_id));
    if (!inserted) ToggleAll(new_id, target->second);
    target->second = std::move(stamps);
  }
  Remove(session);
}

bool StampTable::WasRemoved(std::string_view session) const { return removed_.contains(session); }

void StampTable::ForEachRemoved(const std::function<void(const std::string&)>& fn) const {
  for (const std::string& id : removed_order_) fn(id);
}

}  // namespace sessiond
