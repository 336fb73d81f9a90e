#include "replication/session_table.h"

#include <atomic>
#include <bit>
#include <chrono>
#include <cstring>

namespace sessiond {
namespace {

constexpr size_t kMinCapacity = 16;

// Load (sessions plus tombstones) at which the table rehashes: 7/8 keeps linear probing's
// miss scans within a cache line or two of control bytes.
size_t MaxLoad(size_t capacity) { return capacity - capacity / 8; }

// Differs between the tables of one process (a counter) and between processes (the address
// of a stack variable and the clock), which is all the scrambling needs: it is no defence
// against chosen keys, and need not be, as session ids are random.
uint64_t NewSeed() {
  static std::atomic<uint64_t> counter{0};
  int local = 0;
  uint64_t seed = counter.fetch_add(1, std::memory_order_relaxed) * 0x9E3779B97F4A7C15ull;
  seed ^= reinterpret_cast<uintptr_t>(&local);
  seed ^= static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return seed;
}

}  // namespace

SessionTable::SessionTable() : seed_(NewSeed()) {}

SessionTable::~SessionTable() {
  for (size_t i = 0; i < capacity_; ++i) {
    if (IsFull(ctrl_[i])) delete slots_[i];
  }
}

size_t SessionTable::FindSlot(const SessionKey& key) const {
  if (capacity_ == 0) return capacity_;
  const uint64_t hash = key.Hash();
  const uint8_t tag = Tag(hash);
  const size_t mask = capacity_ - 1;
  // Terminates: MaxLoad leaves at least one empty slot.
  for (size_t i = Home(hash);; i = (i + 1) & mask) {
    const uint8_t c = ctrl_[i];
    if (c == kEmpty) return capacity_;
    if (c == tag && slots_[i]->key() == key) return i;
  }
}

void SessionTable::Prefetch(const SessionKey& key) const {
  if (capacity_ == 0) return;
  const uint64_t hash = key.Hash();
  const uint8_t tag = Tag(hash);
  const size_t mask = capacity_ - 1;
  for (size_t i = Home(hash);; i = (i + 1) & mask) {
    const uint8_t c = ctrl_[i];
    if (c == kEmpty) return;
    if (c == tag) {
      __builtin_prefetch(slots_[i]);
      return;
    }
  }
}

StoredSession* SessionTable::Find(const SessionKey& key) const {
  const size_t i = FindSlot(key);
  return i == capacity_ ? nullptr : slots_[i];
}

StoredSession* SessionTable::Insert(std::unique_ptr<StoredSession> session) {
  if (size_ + tombstones_ + 1 > MaxLoad(capacity_)) {
    // Grow when live sessions are over half the load limit; otherwise tombstones are what
    // filled the table, and a same-size rehash clears them.
    size_t new_capacity = capacity_ == 0 ? kMinCapacity : capacity_;
    if (size_ + 1 > MaxLoad(new_capacity) / 2) new_capacity *= 2;
    Rehash(new_capacity);
  }
  const uint64_t hash = session->key().Hash();
  const size_t mask = capacity_ - 1;
  size_t i = Home(hash);
  while (IsFull(ctrl_[i])) i = (i + 1) & mask;
  if (ctrl_[i] == kDeleted) --tombstones_;
  ctrl_[i] = Tag(hash);
  slots_[i] = session.release();
  ++size_;
  return slots_[i];
}

std::unique_ptr<StoredSession> SessionTable::Remove(const SessionKey& key) {
  const size_t i = FindSlot(key);
  if (i == capacity_) return nullptr;
  std::unique_ptr<StoredSession> session(slots_[i]);
  // A probe that reached slot i would stop at an empty successor anyway, so then the slot can
  // be empty rather than a tombstone.
  if (ctrl_[(i + 1) & (capacity_ - 1)] == kEmpty) {
    ctrl_[i] = kEmpty;
  } else {
    ctrl_[i] = kDeleted;
    ++tombstones_;
  }
  --size_;
  // Give memory back after a mass expiry, with hysteresis against growing straight back.
  if (capacity_ > 1024 && size_ < capacity_ / 16) Rehash(capacity_ / 4);
  return session;
}

void SessionTable::Reserve(size_t sessions) {
  if (sessions + tombstones_ <= MaxLoad(capacity_)) return;
  size_t new_capacity = capacity_ == 0 ? kMinCapacity : capacity_;
  while (sessions > MaxLoad(new_capacity)) new_capacity *= 2;
  Rehash(new_capacity);
}

void SessionTable::Rehash(size_t new_capacity) {
  auto ctrl = std::make_unique<uint8_t[]>(new_capacity);  // zeroed: all kEmpty
  std::unique_ptr<StoredSession*[]> slots(new StoredSession*[new_capacity]);
  const int shift = 64 - std::countr_zero(new_capacity);
  const size_t mask = new_capacity - 1;
  for (size_t j = 0; j < capacity_; ++j) {
    if (!IsFull(ctrl_[j])) continue;
    const uint64_t hash = slots_[j]->key().Hash();
    size_t i = Home(hash, shift);
    while (ctrl[i] != kEmpty) i = (i + 1) & mask;
    ctrl[i] = Tag(hash);
    slots[i] = slots_[j];
  }
  ctrl_ = std::move(ctrl);
  slots_ = std::move(slots);
  capacity_ = new_capacity;
  shift_ = shift;
  tombstones_ = 0;
}

}  // namespace sessiond
