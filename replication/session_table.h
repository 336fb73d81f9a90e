// SessionTable: the store's index from SessionKey to StoredSession, an open-addressing hash table.
//
// std::unordered_map costs a 32-byte node plus a bucket pointer per session on top of the
// session; this table costs 9 bytes a slot (a pointer and a control byte) at up to 7/8 load.
// Linear probing over the control bytes (empty, deleted, or 7 bits of the key's hash) keeps
// a miss to a scan of adjacent bytes, and a hit to usually one dereference. The sessions
// themselves are separate allocations, so their addresses stay put while the table grows.
//
// Each table scrambles the key's hash with a seed of its own before taking a home slot. Without
// it, copying one table into another (a state transfer, a backup fill: the sender iterates in
// slot order, so the keys arrive sorted by home) piles every insert into one growing cluster
// at the front of the smaller receiving table, and inserts turn quadratic.
//
// Not thread-safe: owned by the SessionStore, on its loop.
#ifndef SESSIOND_REPLICATION_SESSION_TABLE_H_
#define SESSIOND_REPLICATION_SESSION_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "replication/session_key.h"
#include "replication/stored_session.h"

namespace sessiond {

class SessionTable {
 public:
  SessionTable();
  ~SessionTable();
  SessionTable(const SessionTable&) = delete;
  SessionTable& operator=(const SessionTable&) = delete;

  size_t size() const { return size_; }
  // Slots allocated (for memory accounting and tests).
  size_t capacity() const { return capacity_; }

  // The session with `key`, or nullptr. The pointer stays valid until that session is removed.
  StoredSession* Find(const SessionKey& key) const;
  // Asks the CPU to fetch the session `key` names (by its slot, without reading the session),
  // so that a Find a little later does not wait for memory. For loops over many keys.
  void Prefetch(const SessionKey& key) const;
  // Fetches the slots where `key` would go, for an Insert (or a Find) a little later.
  void PrefetchSlot(const SessionKey& key) const {
    if (capacity_ == 0) return;
    const size_t i = Home(key.Hash());
    __builtin_prefetch(&ctrl_[i]);
    __builtin_prefetch(&slots_[i]);
  }

  // Takes ownership of `session` and returns it. REQUIRES: no session with its key is held.
  StoredSession* Insert(std::unique_ptr<StoredSession> session);

  // Grows the table, if need be, to hold `sessions` sessions without rehashing again. A table
  // that shrinks back (after removals) may be smaller than this later.
  void Reserve(size_t sessions);

  // Gives up the session with `key` (nullptr when none is held).
  std::unique_ptr<StoredSession> Remove(const SessionKey& key);

  // Calls fn(const StoredSession&) for every session, in no particular order. `fn` must not
  // insert or remove.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (size_t i = 0; i < capacity_; ++i) {
      if (IsFull(ctrl_[i])) fn(static_cast<const StoredSession&>(*slots_[i]));
    }
  }

 private:
  static constexpr uint8_t kEmpty = 0;
  static constexpr uint8_t kDeleted = 1;
  static bool IsFull(uint8_t c) { return (c & 0x80) != 0; }
  static uint8_t Tag(uint64_t hash) { return static_cast<uint8_t>(0x80 | (hash & 0x7F)); }

  // The first slot to probe for `hash` in a table of 2^(64 - shift) slots: the top bits of the
  // hash scrambled with this table's seed (Tag() uses the bottom bits of the plain hash).
  size_t Home(uint64_t hash, int shift) const {
    uint64_t h = (hash ^ seed_) * 0x9E3779B97F4A7C15ull;  // odd: a bijection on 64 bits
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ull;
    return static_cast<size_t>(h >> shift);
  }
  size_t Home(uint64_t hash) const { return Home(hash, shift_); }
  // The slot holding `key`, or capacity_ when none does.
  size_t FindSlot(const SessionKey& key) const;
  // Moves every session into fresh arrays of `new_capacity` slots (a power of two), which also
  // clears the tombstones.
  void Rehash(size_t new_capacity);

  std::unique_ptr<uint8_t[]> ctrl_;
  std::unique_ptr<StoredSession*[]> slots_;  // owned: slots_[i] is live iff IsFull(ctrl_[i])
  size_t capacity_ = 0;                      // 0 or a power of two >= kMinCapacity
  int shift_ = 64;                           // 64 - log2(capacity_)
  size_t size_ = 0;
  size_t tombstones_ = 0;
  const uint64_t seed_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_SESSION_TABLE_H_
