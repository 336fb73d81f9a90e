// StampTable: the (Lamport clock, node id) stamp of every replicated field of every session, and
// the ids of sessions removed lately, for delta mode's last-writer-wins merge.
//
// A field is an attribute (by name), the principal, or max_idle_s. A replica applies a change to
// a field only if the change's stamp is greater than the one held here, and removing an
// attribute leaves a tombstone stamp, so a late set from before the removal cannot bring the
// attribute back. Stamps compare by clock, then by node id, so every node orders two concurrent
// changes the same way and all replicas converge whatever order they receive them in.
//
// A session that is gone (invalidated, expired, renamed) leaves its id in a bounded list of
// recent removals, so that a delta for it arriving late over another link does not resurrect it.
//
// Memory: sessions are keyed by their 16-byte SessionKey (ids that do not parse as one, which
// only tests use, fall back to a map keyed by the text), node ids and attribute names are
// interned, and a stamp is 16 bytes, so a session's stamps are one allocation: 240-280 bytes
// a session with ten stamps, against some 630 when keyed by text with a string per stamp.
// Interned names are kept for the table's life; attribute names come from a small vocabulary.
// Fields never written since the session was created hold no stamp and compare as the oldest.
// The delta mode's stamps live beside the SessionStore rather than inside its packed
// AttributeBlock; see the report on moving them.
//
// Anti-entropy: sessions fall into kBuckets buckets by a hash of their id, and the table keeps,
// per bucket, the XOR of a hash of every stamp it holds (session id, field, name, clock, node,
// tombstone). Every change updates it in O(1), so two replicas compare their stamps by
// exchanging 256 numbers, and a differing bucket names the few sessions to exchange. Hashes
// are FNV-1a based: stable across processes, builds and machines.
//
// Threading: not thread-safe; owned by the DeltaManager's event loop.
#ifndef SESSIOND_REPLICATION_DELTA_STAMP_TABLE_H_
#define SESSIOND_REPLICATION_DELTA_STAMP_TABLE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "replication/session_key.h"

namespace sessiond {

enum class StampedField : uint8_t { kAttribute, kPrincipal, kMaxIdle };

struct Stamp {
  uint64_t clock = 0;
  // Interned by the table, valid and at the same address for the table's life; "" for the
  // oldest stamp.
  std::string_view node;
};

// Strict "happened later" order: clock first, node id to break ties.
bool StampAfter(const Stamp& a, const Stamp& b);

// One stamp, as Adopt takes them.
struct StampRecord {
  StampedField field = StampedField::kAttribute;
  std::string_view name;
  uint64_t clock = 0;
  std::string_view node;
  bool removed = false;
};

// Transparent hashing, so lookups by string_view do not build a std::string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class StampTable {
 public:
  static constexpr size_t kBuckets = 256;
  // Slots of Adopt's name cache.
  static constexpr size_t kAdoptNameSlots = 64;
  using BucketHashes = std::array<uint64_t, kBuckets>;

  // The anti-entropy bucket of a session id.
  static uint32_t Bucket(std::string_view session);

  explicit StampTable(size_t max_removed_ids);
  StampTable(const StampTable&) = delete;
  StampTable& operator=(const StampTable&) = delete;

  // The stamp `session`'s field holds; the oldest stamp when none was recorded.
  Stamp Get(std::string_view session, StampedField field, std::string_view name = {}) const;
  // Records `stamp` for the field; `removed` marks an attribute tombstone.
  void Set(std::string_view session, StampedField field, std::string_view name, uint64_t clock,
           std::string_view node, bool removed = false);
  // Replaces every stamp of `session` with `stamps`, and sets its touch_sent_ms, in one lookup:
  // the bulk path of state transfer, where a node takes in a million sessions at once. `key`:
  // SessionKey::FromText(session) when the caller decoded it already, else nullopt.
  void Adopt(std::string_view session, std::span<const StampRecord> stamps, int64_t touch_sent_ms,
             const std::optional<SessionKey>& key = std::nullopt);
  // Whether the attribute's newest stamp is a tombstone.
  bool IsTombstone(std::string_view session, std::string_view name) const;

  // Calls fn(field, name, stamp, removed) for every stamped field of `session`.
  void ForEach(
      std::string_view session,
      const std::function<void(StampedField, std::string_view, const Stamp&, bool)>& fn) const;

  // The same for a session by its key (a session the store holds: its id is a real one), without
  // decoding the id or a std::function call per stamp: what the state-transfer sender uses.
  template <typename Fn>
  void ForEachOfKey(const SessionKey& key, Fn&& fn) const {
    const SessionStamps* stamps = keyed_.Find(key);
    if (stamps == nullptr) return;
    for (const Entry& e : stamps->entries) {
      fn(static_cast<StampedField>(e.field), std::string_view(names_[e.name]),
         Stamp{e.clock, nodes_[e.node]}, e.removed != 0);
    }
  }

  // When this node last replicated an access to `session` (0: never).
  int64_t touch_sent_ms(std::string_view session) const;
  void set_touch_sent_ms(std::string_view session, int64_t ms);

  // The session is gone: drops its stamps and remembers its id as removed.
  void Remove(std::string_view session);
  // The session is now `new_id`: its stamps move, and the old id counts as removed.
  void Rename(std::string_view session, std::string_view new_id);
  // Whether `session` was removed lately (among the last max_removed_ids removals).
  bool WasRemoved(std::string_view session) const;

  // Calls fn(id) for every id among the recent removals, oldest first.
  void ForEachRemoved(const std::function<void(const std::string&)>& fn) const;

  // Per bucket, the XOR of the hashes of every stamp its sessions hold.
  const BucketHashes& bucket_hashes() const { return buckets_; }

  // For a loop over many sessions by key: Prefetch(key) asks the CPU to fetch the session's slot,
  // PrefetchStamps(key) (some iterations later, when the slot is at hand) its stamps.
  void Prefetch(const SessionKey& key) const { keyed_.Prefetch(key); }
  void PrefetchStamps(const SessionKey& key) const {
    if (const SessionStamps* s = keyed_.Find(key); s != nullptr && !s->entries.empty()) {
      const char* first = reinterpret_cast<const char*>(s->entries.data());
      const char* last = reinterpret_cast<const char*>(&s->entries.back() + 1) - 1;
      for (const char* p = first; p <= last; p += 64) __builtin_prefetch(p);
      __builtin_prefetch(last);
    }
  }

  // Makes room for `sessions` sessions in all, so a state transfer does not rehash the table
  // again and again as it fills.
  void Reserve(size_t sessions) { keyed_.Reserve(sessions); }

  // Sessions with stamps, for leak checks.
  size_t session_count() const { return keyed_.size() + named_.size(); }

 private:
  // 16 bytes: the names and nodes are indexes into names_ and nodes_.
  struct Entry {
    uint64_t clock = 0;
    uint32_t name = 0;  // the attribute's; 0 ("") for the principal and max_idle_s
    uint32_t node : 29 = 0;
    uint32_t field : 2 = 0;  // a StampedField
    uint32_t removed : 1 = 0;
  };
  struct SessionStamps {
    int64_t touch_sent_ms = 0;
    std::vector<Entry> entries;
  };
  // The stamps of sessions with real ids, by key: open addressing with linear probing, as in
  // SessionTable, so a lookup costs one cache miss for the slot and one for the stamps, where
  // std::unordered_map costs three (bucket, the node before, the node).
  class KeyedSessions {
   public:
    size_t size() const { return size_; }
    SessionStamps* Find(const SessionKey& key) const;
    void Prefetch(const SessionKey& key) const;
    // REQUIRES: no rehash while the reference is used; it is invalidated by the next insert.
    SessionStamps& FindOrAdd(const SessionKey& key);
    void Erase(const SessionKey& key);
    void Reserve(size_t sessions);

   private:
    struct Slot {
      SessionKey key;
      SessionStamps stamps;
    };
    static constexpr uint8_t kEmpty = 0, kDeleted = 1;
    static bool IsFull(uint8_t c) { return (c & 0x80) != 0; }
    static uint8_t Tag(uint64_t hash) { return static_cast<uint8_t>(0x80 | ((hash >> 25) & 0x7F)); }
    size_t Home(uint64_t hash) const { return static_cast<size_t>(hash >> shift_); }
    size_t FindSlot(const SessionKey& key, uint64_t hash) const;
    void Rehash(size_t new_capacity);

    std::unique_ptr<uint8_t[]> ctrl_;
    std::unique_ptr<Slot[]> slots_;
    size_t capacity_ = 0;  // 0 or a power of two
    int shift_ = 64;
    size_t size_ = 0;
    size_t tombstones_ = 0;
  };

  uint32_t Intern(std::string_view node);
  uint32_t InternName(std::string_view name);
  static constexpr uint32_t kNoName = UINT32_MAX;
  // The index of `name` among the interned names, or kNoName when it was never interned.
  uint32_t NameIndex(std::string_view name) const;
  SessionStamps* FindSession(std::string_view session);
  const SessionStamps* FindSession(std::string_view session) const;
  SessionStamps& FindOrAddSession(std::string_view session);
  void EraseSession(std::string_view session);
  const Entry* FindEntry(std::string_view session, StampedField field, std::string_view name) const;
  // The hash of one stamp of the session whose id hashes to `id_hash`.
  uint64_t EntryHash(uint64_t id_hash, const Entry& e) const;
  // XORs every stamp of `stamps` into (or out of) the bucket of `session`.
  void ToggleAll(std::string_view session, const SessionStamps& stamps);

  const size_t max_removed_ids_;
  // Index 0 is "". A deque, so the views Get and ForEach hand out stay valid (and keep their
  // address, which StampedSessionWriter relies on) for the table's life.
  std::deque<std::string> nodes_;
  std::vector<uint64_t> node_hashes_;  // of nodes_, by the same index
  std::vector<std::string> names_;     // index 0 is ""
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> name_index_;
  // Adopt's cache of interned names, by a cheap hash of the name (AdoptNameSlot); 0 is "".
  std::array<uint32_t, kAdoptNameSlots> adopt_names_{};
  uint32_t adopt_node_ = 0;  // the node of the last stamp Adopt took
  KeyedSessions keyed_;
  std::unordered_map<std::string, SessionStamps, StringHash, std::equal_to<>> named_;
  BucketHashes buckets_{};
  std::deque<std::string> removed_order_;
  std::unordered_set<std::string, StringHash, std::equal_to<>> removed_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_DELTA_STAMP_TABLE_H_
