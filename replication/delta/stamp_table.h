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
// Memory: node ids are interned (a stamp is 16 bytes); fields never written since the session
// was created hold no stamp and compare as the oldest. The delta mode's stamps live beside the
// SessionStore rather than inside its packed AttributeBlock; see the report on moving them.
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
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace sessiond {

enum class StampedField : uint8_t { kAttribute, kPrincipal, kMaxIdle };

struct Stamp {
  uint64_t clock = 0;
  std::string_view node;  // interned by the table; "" for the oldest stamp
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
  // the bulk path of state transfer, where a node takes in a million sessions at once.
  void Adopt(std::string_view session, const std::vector<StampRecord>& stamps,
             int64_t touch_sent_ms);
  // Whether the attribute's newest stamp is a tombstone.
  bool IsTombstone(std::string_view session, std::string_view name) const;

  // Calls fn(field, name, stamp, removed) for every stamped field of `session`.
  void ForEach(
      std::string_view session,
      const std::function<void(StampedField, std::string_view, const Stamp&, bool)>& fn) const;

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

  // Makes room for `sessions` sessions in all, so a state transfer does not rehash the table
  // again and again as it fills.
  void Reserve(size_t sessions) { sessions_.reserve(sessions); }

  // Sessions with stamps, for leak checks.
  size_t session_count() const { return sessions_.size(); }

 private:
  struct Entry {
    std::string name;  // the attribute's; "" for the principal and max_idle_s
    uint64_t clock = 0;
    uint32_t node = 0;  // index into nodes_
    StampedField field = StampedField::kAttribute;
    bool removed = false;
  };
  struct SessionStamps {
    int64_t touch_sent_ms = 0;
    std::vector<Entry> entries;
  };

  uint32_t Intern(std::string_view node);
  const Entry* FindEntry(std::string_view session, StampedField field, std::string_view name) const;
  // The hash of one stamp of the session whose id hashes to `id_hash`.
  uint64_t EntryHash(uint64_t id_hash, const Entry& e) const;
  // XORs every stamp of `stamps` into (or out of) the bucket of `session`.
  void ToggleAll(std::string_view session, const SessionStamps& stamps);

  const size_t max_removed_ids_;
  std::vector<std::string> nodes_;     // index 0 is ""
  std::vector<uint64_t> node_hashes_;  // of nodes_, by the same index
  std::unordered_map<std::string, SessionStamps, StringHash, std::equal_to<>> sessions_;
  BucketHashes buckets_{};
  std::deque<std::string> removed_order_;
  std::unordered_set<std::string, StringHash, std::equal_to<>> removed_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_DELTA_STAMP_TABLE_H_
