// PlacementTable: where every session of the cluster lives, as this node knows it.
//
// One entry per session, whatever this node's role in it (primary, backup or proxy): the
// session's key and the placement (its primary, then its backups). For the sessions this node
// holds no copy of, the entry is the whole of what it keeps (Tomcat's proxy entry), so it is
// built for memory: node ids are interned once (a uint16_t index each), each distinct
// placement (a short list of node indexes) is interned once with a use count, and an entry is
// the session's 16 key bytes plus a 4-byte placement index, in an open-addressing table with
// linear probing (load at most 3/4): 20 bytes a slot, about 27-54 bytes an entry with the empty
// slots, never an allocation per entry. A cluster of N nodes with K backups has at most
// N!/(N-K-1)! placements, a few hundred in practice.
//
// Use counts make role counts cheap: sessions this node is primary of is the sum of the use
// counts of the placements that start with it, without scanning the entries.
//
// Threading: not thread-safe; owned by its manager's event loop.
#ifndef SESSIOND_REPLICATION_BACKUP_PLACEMENT_TABLE_H_
#define SESSIOND_REPLICATION_BACKUP_PLACEMENT_TABLE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "replication/session_key.h"

namespace sessiond {

class PlacementTable {
 public:
  using NodeIndex = uint16_t;
  using PlacementId = uint32_t;  // 0 = none
  // An interned placement: node indexes, primary first.
  using NodeList = std::vector<NodeIndex>;

  PlacementTable();

  // Sets the placement of `key` to `nodes` (node ids, primary first; must not be empty).
  void Set(const SessionKey& key, const std::vector<std::string>& nodes);
  // Forgets `key`. Returns whether it was there.
  bool Erase(const SessionKey& key);
  // The placement of `key`, or 0.
  PlacementId Find(const SessionKey& key) const;
  // The node ids of `key`'s placement, primary first; empty when unknown.
  std::vector<std::string> Nodes(const SessionKey& key) const;
  // The node ids of placement `id`.
  std::vector<std::string> NodesOf(PlacementId id) const;
  const NodeList& List(PlacementId id) const { return placements_[id].nodes; }

  // The index of `node`, interning it on first use.
  NodeIndex Intern(std::string_view node);
  // The index of `node`, or -1 when it was never interned.
  int IndexOf(std::string_view node) const;
  const std::string& NodeName(NodeIndex index) const { return node_names_[index]; }

  // Calls fn(key, placement id) for every entry. `fn` must not change the table.
  void ForEach(const std::function<void(const SessionKey&, PlacementId)>& fn) const;
  // Calls fn(placement id, node list, sessions using it) for every placement in use.
  void ForEachPlacement(const std::function<void(PlacementId, const NodeList&, size_t)>& fn) const;

  size_t size() const { return size_; }
  // Bytes the table holds: slots, placements and node names (for /metrics and the memory test).
  size_t MemoryBytes() const;

 private:
  struct Slot {
    std::array<uint8_t, SessionKey::kBytes> key;
    PlacementId placement;  // 0 = empty slot
  };
  struct Placement {
    NodeList nodes;
    size_t uses = 0;
  };

  PlacementId InternPlacement(const NodeList& nodes);
  void Release(PlacementId id);
  size_t Home(const std::array<uint8_t, SessionKey::kBytes>& key) const;
  // The slot holding `key`, or the empty slot where it would go.
  size_t Probe(const std::array<uint8_t, SessionKey::kBytes>& key) const;
  void Grow();

  std::vector<Slot> slots_;
  size_t size_ = 0;
  // placements_[0] is the unused "none"; freed ids are reused.
  std::vector<Placement> placements_;
  std::map<NodeList, PlacementId> placement_ids_;
  std::vector<PlacementId> free_placements_;
  std::vector<std::string> node_names_;
  std::map<std::string, NodeIndex, std::less<>> node_ids_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_BACKUP_PLACEMENT_TABLE_H_
