#include "replication/delta/stamp_table.h"

#include <algorithm>
#include <utility>

namespace sessiond {

bool StampAfter(const Stamp& a, const Stamp& b) {
  if (a.clock != b.clock) return a.clock > b.clock;
  return a.node > b.node;
}

StampTable::StampTable(size_t max_removed_ids)
    : max_removed_ids_(std::max<size_t>(1, max_removed_ids)), nodes_{""} {}

uint32_t StampTable::Intern(std::string_view node) {
  // A cluster has a handful of nodes: a linear scan beats a map here.
  for (uint32_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i] == node) return i;
  }
  nodes_.emplace_back(node);
  return static_cast<uint32_t>(nodes_.size() - 1);
}

const StampTable::Entry* StampTable::FindEntry(std::string_view session, StampedField field,
                                               std::string_view name) const {
  auto it = sessions_.find(std::string(session));
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
  SessionStamps& stamps = sessions_[std::string(session)];
  for (Entry& e : stamps.entries) {
    if (e.field == field && e.name == name) {
      e.clock = clock;
      e.node = index;
      e.removed = removed;
      return;
    }
  }
  stamps.entries.push_back(Entry{std::string(name), clock, index, field, removed});
}

bool StampTable::IsTombstone(std::string_view session, std::string_view name) const {
  const Entry* e = FindEntry(session, StampedField::kAttribute, name);
  return e != nullptr && e->removed;
}

void StampTable::ForEach(
    std::string_view session,
    const std::function<void(StampedField, std::string_view, const Stamp&, bool)>& fn) const {
  auto it = sessions_.find(std::string(session));
  if (it == sessions_.end()) return;
  for (const Entry& e : it->second.entries) {
    fn(e.field, e.name, Stamp{e.clock, nodes_[e.node]}, e.removed);
  }
}

int64_t StampTable::touch_sent_ms(std::string_view session) const {
  auto it = sessions_.find(std::string(session));
  return it == sessions_.end() ? 0 : it->second.touch_sent_ms;
}

void StampTable::set_touch_sent_ms(std::string_view session, int64_t ms) {
  sessions_[std::string(session)].touch_sent_ms = ms;
}

void StampTable::Remove(std::string_view session) {
  sessions_.erase(std::string(session));
  if (removed_.contains(std::string(session))) return;
  removed_order_.emplace_back(session);
  removed_.insert(removed_order_.back());
  while (removed_order_.size() > max_removed_ids_) {
    removed_.erase(removed_order_.front());
    removed_order_.pop_front();
  }
}

void StampTable::Rename(std::string_view session, std::string_view new_id) {
  auto it = sessions_.find(std::string(session));
  if (it != sessions_.end()) {
    SessionStamps stamps = std::move(it->second);
    sessions_.erase(it);
    sessions_[std::string(new_id)] = std::move(stamps);
  }
  Remove(session);
}

bool StampTable::WasRemoved(std::string_view session) const {
  return removed_.contains(std::string(session));
}

}  // namespace sessiond
