#include "replication/backup/placement_table.h"

#include <cstring>
#include <stdexcept>

namespace sessiond {
namespace {

constexpr size_t kInitialSlots = 64;

bool IsEmpty(PlacementTable::PlacementId id) { return id == 0; }

}  // namespace

PlacementTable::PlacementTable() : slots_(kInitialSlots), placements_(1) {
  for (Slot& s : slots_) s.placement = 0;
}

size_t PlacementTable::Home(const std::array<uint8_t, SessionKey::kBytes>& key) const {
  return SessionKey(key).Hash() & (slots_.size() - 1);
}

size_t PlacementTable::Probe(const std::array<uint8_t, SessionKey::kBytes>& key) const {
  const size_t mask = slots_.size() - 1;
  for (size_t i = Home(key);; i = (i + 1) & mask) {
    if (IsEmpty(slots_[i].placement) || slots_[i].key == key) return i;
  }
}

void PlacementTable::Grow() {
  std::vector<Slot> old(slots_.size() * 2);
  old.swap(slots_);
  for (Slot& s : slots_) s.placement = 0;
  for (const Slot& s : old) {
    if (!IsEmpty(s.placement)) slots_[Probe(s.key)] = s;
  }
}

PlacementTable::NodeIndex PlacementTable::Intern(std::string_view node) {
  auto it = node_ids_.find(node);
  if (it != node_ids_.end()) return it->second;
  if (node_names_.size() > UINT16_MAX) {
    // Node ids are never forgotten; 65536 distinct ones means something renames nodes at will.
    throw std::length_error("more than 65536 distinct node ids in one cluster");
  }
  const auto index = static_cast<NodeIndex>(node_names_.size());
  node_names_.emplace_back(node);
  node_ids_.emplace(std::string(node), index);
  return index;
}

int PlacementTable::IndexOf(std::string_view node) const {
  auto it = node_ids_.find(node);
  return it == node_ids_.end() ? -1 : it->second;
}

PlacementTable::PlacementId PlacementTable::InternPlacement(const NodeList& nodes) {
  auto it = placement_ids_.find(nodes);
  PlacementId id;
  if (it != placement_ids_.end()) {
    id = it->second;
  } else {
    if (!free_placements_.empty()) {
      id = free_placements_.back();
      free_placements_.pop_back();
      placements_[id].nodes = nodes;
    } else {
      id = static_cast<PlacementId>(placements_.size());
      placements_.push_back(Placement{nodes, 0});
    }
    placement_ids_.emplace(nodes, id);
  }
  ++placements_[id].uses;
  return id;
}

void PlacementTable::Release(PlacementId id) {
  Placement& p = placements_[id];
  if (--p.uses > 0) return;
  placement_ids_.erase(p.nodes);
  p.nodes.clear();
  free_placements_.push_back(id);
}

void PlacementTable::Set(const SessionKey& key, const std::vector<std::string>& nodes) {
  NodeList list;
  list.reserve(nodes.size());
  for (const std::string& node : nodes) list.push_back(Intern(node));
  const PlacementId id = InternPlacement(list);
  size_t i = Probe(key.bytes());
  if (!IsEmpty(slots_[i].placement)) {
    Release(slots_[i].placement);
    slots_[i].placement = id;
    return;
  }
  if ((size_ + 1) * 4 > slots_.size() * 3) {
    Grow();
    i = Probe(key.bytes());
  }
  slots_[i].key = key.bytes();
  slots_[i].placement = id;
  ++size_;
}

bool PlacementTable::Erase(const SessionKey& key) {
  size_t i = Probe(key.bytes());
  if (IsEmpty(slots_[i].placement)) return false;
  Release(slots_[i].placement);
  slots_[i].placement = 0;
  --size_;
  // Backward-shift deletion: no tombstones, so lookups never slow down with churn.
  const size_t mask = slots_.size() - 1;
  for (size_t j = (i + 1) & mask; !IsEmpty(slots_[j].placement); j = (j + 1) & mask) {
    const size_t home = Home(slots_[j].key);
    // Move j back to the hole at i unless its home lies cyclically in (i, j].
    const bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
    if (stays) continue;
    slots_[i] = slots_[j];
    slots_[j].placement = 0;
    i = j;
  }
  return true;
}

PlacementTable::PlacementId PlacementTable::Find(const SessionKey& key) const {
  return slots_[Probe(key.bytes())].placement;
}

std::vector<std::string> PlacementTable::NodesOf(PlacementId id) const {
  std::vector<std::string> nodes;
  if (id == 0) return nodes;
  for (NodeIndex n : placements_[id].nodes) nodes.push_back(node_names_[n]);
  return nodes;
}

std::vector<std::string> PlacementTable::Nodes(const SessionKey& key) const {
  return NodesOf(Find(key));
}

void PlacementTable::ForEach(const std::function<void(const SessionKey&, PlacementId)>& fn) const {
  for (const Slot& s : slots_) {
    if (!IsEmpty(s.placement)) fn(SessionKey(s.key), s.placement);
  }
}

void PlacementTable::ForEachPlacement(
    const std::function<void(PlacementId, const NodeList&, size_t)>& fn) const {
  for (PlacementId id = 1; id < placements_.size(); ++id) {
    if (placements_[id].uses > 0) fn(id, placements_[id].nodes, placements_[id].uses);
  }
}

size_t PlacementTable::MemoryBytes() const {
  size_t bytes = slots_.capacity() * sizeof(Slot) + placements_.capacity() * sizeof(Placement);
  for (const Placement& p : placements_) bytes += p.nodes.capacity() * sizeof(NodeIndex);
  // Each interned placement is also a key of placement_ids_ (a map node: about 64 bytes).
  bytes += placement_ids_.size() * (64 + sizeof(NodeList));
  for (const std::string& name : node_names_) bytes += sizeof(std::string) + name.capacity();
  return bytes;
}

}  // namespace sessiond
