#include "replication/delta/stamp_table.h"

#include <algorithm>
#include <bit>
#include <optional>
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

// The anti-entropy bucket of the session whose id hashes (Fnv) to `id_hash`.
uint32_t BucketOfHash(uint64_t id_hash) {
  return static_cast<uint32_t>(Mix(id_hash) % StampTable::kBuckets);
}

// a == b for the short strings Adopt compares (attribute names and node ids, mostly under a
// dozen bytes, equal or differing near the end): a loop the compiler inlines, where
// std::string_view's == calls memcmp, which was a seventh of the receiver loop's time in a
// state transfer (twenty calls a session).
[[gnu::always_inline]] inline bool SameBytes(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.size() > 32) return a == b;
  for (size_t i = a.size(); i-- > 0;) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

// Adopt's name cache slot: a cheap mix of the name's length and its first and last two bytes,
// where the names of one application mostly differ ("attr0", "attr1", "cart", "user").
size_t AdoptNameSlot(std::string_view name) {
  const auto* p = reinterpret_cast<const uint8_t*>(name.data());
  const size_t n = name.size();
  uint32_t h = static_cast<uint32_t>(n) * 0x9E3779B1u;
  h ^= p[0] * 0x85EBCA77u;
  h ^= p[n - 1] * 0xC2B2AE3Du;
  if (n > 1) h ^= p[n - 2] * 0x27D4EB2Fu;
  return (h ^ (h >> 15) ^ (h >> 23)) % StampTable::kAdoptNameSlots;
}

}  // namespace

bool StampAfter(const Stamp& a, const Stamp& b) {
  if (a.clock != b.clock) return a.clock > b.clock;
  return a.node > b.node;
}

uint32_t StampTable::Bucket(std::string_view session) { return BucketOfHash(Fnv(session)); }

StampTable::StampTable(size_t max_removed_ids)
    : max_removed_ids_(std::max<size_t>(1, max_removed_ids)),
      nodes_{std::string()},
      node_hashes_{Fnv("")},
      names_{""} {
  name_index_.emplace("", 0);
}

uint32_t StampTable::Intern(std::string_view node) {
  // A cluster has a handful of nodes: a linear scan beats a map here.
  for (uint32_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i] == node) return i;
  }
  nodes_.emplace_back(node);
  node_hashes_.push_back(Fnv(node));
  return static_cast<uint32_t>(nodes_.size() - 1);
}

uint32_t StampTable::InternName(std::string_view name) {
  if (name.empty()) return 0;
  auto it = name_index_.find(name);
  if (it != name_index_.end()) return it->second;
  const auto index = static_cast<uint32_t>(names_.size());
  names_.emplace_back(name);
  name_index_.emplace(std::string(name), index);
  return index;
}

uint32_t StampTable::NameIndex(std::string_view name) const {
  if (name.empty()) return 0;
  auto it = name_index_.find(name);
  return it == name_index_.end() ? kNoName : it->second;
}

namespace {
constexpr size_t kMinCapacity = 16;
// Live plus deleted slots at which the table rehashes.
size_t MaxLoad(size_t capacity) { return capacity - capacity / 8; }
}  // namespace

size_t StampTable::KeyedSessions::FindSlot(const SessionKey& key, uint64_t hash) const {
  if (capacity_ == 0) return capacity_;
  const size_t mask = capacity_ - 1;
  const uint8_t tag = Tag(hash);
  for (size_t i = Home(hash);; i = (i + 1) & mask) {
    const uint8_t c = ctrl_[i];
    if (c == kEmpty) return capacity_;
    if (c == tag && slots_[i].key == key) return i;
  }
}

void StampTable::KeyedSessions::Prefetch(const SessionKey& key) const {
  if (capacity_ == 0) return;
  const size_t i = Home(key.Hash());
  __builtin_prefetch(&ctrl_[i]);
  __builtin_prefetch(&slots_[i]);
  __builtin_prefetch(reinterpret_cast<const char*>(&slots_[i]) + sizeof(Slot) - 1);
}

StampTable::SessionStamps* StampTable::KeyedSessions::Find(const SessionKey& key) const {
  const size_t i = FindSlot(key, key.Hash());
  return i == capacity_ ? nullptr : &slots_[i].stamps;
}

StampTable::SessionStamps& StampTable::KeyedSessions::FindOrAdd(const SessionKey& key) {
  const uint64_t hash = key.Hash();
  const size_t found = FindSlot(key, hash);
  if (found != capacity_) return slots_[found].stamps;
  if (size_ + tombstones_ + 1 > MaxLoad(capacity_)) {
    size_t new_capacity = capacity_ == 0 ? kMinCapacity : capacity_;
    if (size_ + 1 > MaxLoad(new_capacity) / 2) new_capacity *= 2;
    Rehash(new_capacity);
  }
  const size_t mask = capacity_ - 1;
  size_t i = Home(hash);
  while (IsFull(ctrl_[i])) i = (i + 1) & mask;
  if (ctrl_[i] == kDeleted) --tombstones_;
  ctrl_[i] = Tag(hash);
  slots_[i].key = key;
  slots_[i].stamps = SessionStamps{};
  ++size_;
  return slots_[i].stamps;
}

void StampTable::KeyedSessions::Erase(const SessionKey& key) {
  const size_t i = FindSlot(key, key.Hash());
  if (i == capacity_) return;
  slots_[i].stamps = SessionStamps{};  // frees the entries
  if (ctrl_[(i + 1) & (capacity_ - 1)] == kEmpty) {
    ctrl_[i] = kEmpty;
  } else {
    ctrl_[i] = kDeleted;
    ++tombstones_;
  }
  --size_;
  // Give memory back after mass removals, with hysteresis against growing straight back.
  if (capacity_ > 1024 && size_ < capacity_ / 16) Rehash(capacity_ / 4);
}

void StampTable::KeyedSessions::Reserve(size_t sessions) {
  if (sessions + tombstones_ <= MaxLoad(capacity_)) return;
  size_t new_capacity = capacity_ == 0 ? kMinCapacity : capacity_;
  while (sessions > MaxLoad(new_capacity)) new_capacity *= 2;
  Rehash(new_capacity);
}

void StampTable::KeyedSessions::Rehash(size_t new_capacity) {
  auto ctrl = std::make_unique<uint8_t[]>(new_capacity);  // zeroed: all kEmpty
  auto slots = std::make_unique<Slot[]>(new_capacity);
  const int shift = 64 - std::countr_zero(new_capacity);
  const size_t mask = new_capacity - 1;
  for (size_t j = 0; j < capacity_; ++j) {
    if (!IsFull(ctrl_[j])) continue;
    const uint64_t hash = slots_[j].key.Hash();
    size_t i = static_cast<size_t>(hash >> shift);
    while (ctrl[i] != kEmpty) i = (i + 1) & mask;
    ctrl[i] = ctrl_[j];
    slots[i].key = slots_[j].key;
    slots[i].stamps = std::move(slots_[j].stamps);
  }
  ctrl_ = std::move(ctrl);
  slots_ = std::move(slots);
  capacity_ = new_capacity;
  shift_ = shift;
  tombstones_ = 0;
}

StampTable::SessionStamps* StampTable::FindSession(std::string_view session) {
  return const_cast<SessionStamps*>(std::as_const(*this).FindSession(session));
}

const StampTable::SessionStamps* StampTable::FindSession(std::string_view session) const {
  if (const std::optional<SessionKey> key = SessionKey::FromText(session)) {
    return keyed_.Find(*key);
  }
  auto it = named_.find(session);
  return it == named_.end() ? nullptr : &it->second;
}

StampTable::SessionStamps& StampTable::FindOrAddSession(std::string_view session) {
  if (const std::optional<SessionKey> key = SessionKey::FromText(session)) {
    return keyed_.FindOrAdd(*key);
  }
  auto it = named_.find(session);
  if (it == named_.end()) it = named_.emplace(std::string(session), SessionStamps{}).first;
  return it->second;
}

void StampTable::EraseSession(std::string_view session) {
  if (const std::optional<SessionKey> key = SessionKey::FromText(session)) {
    keyed_.Erase(*key);
    return;
  }
  auto it = named_.find(session);
  if (it != named_.end()) named_.erase(it);
}

uint64_t StampTable::EntryHash(uint64_t id_hash, const Entry& e) const {
  uint64_t h = Fnv(names_[e.name], id_hash ^ static_cast<uint64_t>(e.field));
  h = Mix(h ^ e.clock);
  h = Mix(h ^ node_hashes_[e.node]);
  return Mix(h ^ (e.removed ? 1 : 0));
}

void StampTable::ToggleAll(std::string_view session, const SessionStamps& stamps) {
  if (stamps.entries.empty()) return;
  const uint64_t id_hash = Fnv(session);
  uint64_t& bucket = buckets_[BucketOfHash(id_hash)];  // Bucket(session), hashing it once
  for (const Entry& e : stamps.entries) bucket ^= EntryHash(id_hash, e);
}

const StampTable::Entry* StampTable::FindEntry(std::string_view session, StampedField field,
                                               std::string_view name) const {
  const SessionStamps* stamps = FindSession(session);
  if (stamps == nullptr) return nullptr;
  const uint32_t name_index = NameIndex(name);
  if (name_index == kNoName) return nullptr;
  const auto wanted = static_cast<uint32_t>(field);
  for (const Entry& e : stamps->entries) {
    if (e.field == wanted && e.name == name_index) return &e;
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
  const uint32_t name_index = InternName(name);
  const auto wanted = static_cast<uint32_t>(field);
  SessionStamps& stamps = FindOrAddSession(session);
  const uint64_t id_hash = Fnv(session);
  uint64_t& bucket = buckets_[BucketOfHash(id_hash)];
  for (Entry& e : stamps.entries) {
    if (e.field == wanted && e.name == name_index) {
      bucket ^= EntryHash(id_hash, e);
      e.clock = clock;
      e.node = index;
      e.removed = removed ? 1 : 0;
      bucket ^= EntryHash(id_hash, e);
      return;
    }
  }
  stamps.entries.push_back(Entry{clock, name_index, index, wanted, removed ? 1u : 0u});
  bucket ^= EntryHash(id_hash, stamps.entries.back());
}

void StampTable::Adopt(std::string_view session, std::span<const StampRecord> records,
                       int64_t touch_sent_ms, const std::optional<SessionKey>& key) {
  // Adopted sessions are mostly new here: one hash, no lookup before the insert.
  SessionStamps& stamps = key ? keyed_.FindOrAdd(*key) : FindOrAddSession(session);
  stamps.touch_sent_ms = touch_sent_ms;
  ToggleAll(session, stamps);
  stamps.entries.clear();
  stamps.entries.reserve(records.size());
  // Sessions of one application mostly hold the same few names, though not in the same order (a
  // protobuf map's order varies from message to message): look each name up in a small cache
  // before hashing it in full. Likewise the node, which is mostly the one the last stamp named.
  for (size_t i = 0; i < records.size(); ++i) {
    const StampRecord& r = records[i];
    uint32_t name = 0;
    if (!r.name.empty()) {
      uint32_t& cached = adopt_names_[AdoptNameSlot(r.name)];
      if (!SameBytes(names_[cached], r.name)) cached = InternName(r.name);
      name = cached;
    }
    if (!SameBytes(nodes_[adopt_node_], r.node)) adopt_node_ = Intern(r.node);
    stamps.entries.push_back(
        Entry{r.clock, name, adopt_node_, static_cast<uint32_t>(r.field), r.removed ? 1u : 0u});
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
  const SessionStamps* stamps = FindSession(session);
  if (stamps == nullptr) return;
  for (const Entry& e : stamps->entries) {
    fn(static_cast<StampedField>(e.field), names_[e.name], Stamp{e.clock, nodes_[e.node]},
       e.removed != 0);
  }
}

int64_t StampTable::touch_sent_ms(std::string_view session) const {
  const SessionStamps* stamps = FindSession(session);
  return stamps == nullptr ? 0 : stamps->touch_sent_ms;
}

void StampTable::set_touch_sent_ms(std::string_view session, int64_t ms) {
  FindOrAddSession(session).touch_sent_ms = ms;
}

void StampTable::Remove(std::string_view session) {
  if (const SessionStamps* stamps = FindSession(session)) {
    ToggleAll(session, *stamps);
    EraseSession(session);
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
  if (SessionStamps* found = FindSession(session)) {
    SessionStamps stamps = std::move(*found);
    ToggleAll(session, stamps);
    EraseSession(session);
    ToggleAll(new_id, stamps);
    SessionStamps& target = FindOrAddSession(new_id);
    ToggleAll(new_id, target);
    target = std::move(stamps);
  }
  Remove(session);
}

bool StampTable::WasRemoved(std::string_view session) const {
  // A joining node has removed nothing: spare the hash of every id it takes in.
  return !removed_.empty() && removed_.contains(session);
}

void StampTable::ForEachRemoved(const std::function<void(const std::string&)>& fn) const {
  for (const std::string& id : removed_order_) fn(id);
}

}  // namespace sessiond
