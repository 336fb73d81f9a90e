// FlatKeyMap: a small value per session key, in one flat array.
//
// For the per-session state a primary looks up on every client operation (when an access last
// went to the backups, the run of forwarded accesses). std::unordered_map costs a bucket load,
// a node load and a division per lookup, cache misses each on a loaded machine; here a lookup
// is the key's home slot (a mask of the key's hash) and usually nothing more: open addressing
// with linear probing at load <= 3/4, backward-shift deletion (no tombstones), no allocation
// per entry.
//
// V must be trivially copyable. Pointers and references into the map are invalidated by any
// insertion or erasure.
//
// Threading: not thread-safe; owned by its manager's event loop.
#ifndef SESSIOND_REPLICATION_BACKUP_FLAT_KEY_MAP_H_
#define SESSIOND_REPLICATION_BACKUP_FLAT_KEY_MAP_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "replication/session_key.h"

namespace sessiond {

template <typename V>
class FlatKeyMap {
  static_assert(std::is_trivially_copyable_v<V>, "FlatKeyMap holds plain values");

 public:
  FlatKeyMap() : slots_(kInitialSlots) {}

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // The value of `key`, or nullptr.
  V* Find(const SessionKey& key) {
    Slot& s = slots_[Probe(key)];
    return s.used ? &s.value : nullptr;
  }
  const V* Find(const SessionKey& key) const {
    const Slot& s = slots_[Probe(key)];
    return s.used ? &s.value : nullptr;
  }

  // The value of `key`, inserted as V{} when absent.
  V& operator[](const SessionKey& key) {
    size_t i = Probe(key);
    if (slots_[i].used) return slots_[i].value;
    if ((size_ + 1) * 4 > slots_.size() * 3) {
      Grow();
      i = Probe(key);
    }
    Slot& s = slots_[i];
    s.key = key;
    s.used = true;
    s.value = V{};
    ++size_;
    return s.value;
  }

  // Forgets `key`; returns whether it was there.
  bool Erase(const SessionKey& key) {
    size_t i = Probe(key);
    if (!slots_[i].used) return false;
    slots_[i].used = false;
    --size_;
    // Backward shift: move each following entry of the cluster back into the hole unless its
    // home lies cyclically in (hole, its slot].
    const size_t mask = slots_.size() - 1;
    for (size_t j = (i + 1) & mask; slots_[j].used; j = (j + 1) & mask) {
      const size_t home = Home(slots_[j].key);
      const bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
      if (stays) continue;
      slots_[i] = slots_[j];
      slots_[j].used = false;
      i = j;
    }
    return true;
  }

  // Calls fn(key, value&) for every entry. `fn` must not insert or erase.
  template <typename Fn>
  void ForEach(Fn&& fn) {
    for (Slot& s : slots_) {
      if (s.used) fn(static_cast<const SessionKey&>(s.key), s.value);
    }
  }

 private:
  static constexpr size_t kInitialSlots = 64;  // a power of two, as every size after it

  struct Slot {
    SessionKey key;
    bool used = false;
    V value{};
  };

  size_t Home(const SessionKey& key) const { return key.Hash() & (slots_.size() - 1); }

  // The slot holding `key`, or the empty slot where it would go.
  size_t Probe(const SessionKey& key) const {
    const size_t mask = slots_.size() - 1;
    for (size_t i = Home(key);; i = (i + 1) & mask) {
      if (!slots_[i].used || slots_[i].key == key) return i;
    }
  }

  void Grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (const Slot& s : old) {
      if (s.used) slots_[Probe(s.key)] = s;
    }
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_BACKUP_FLAT_KEY_MAP_H_
