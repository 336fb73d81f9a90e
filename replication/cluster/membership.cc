#include "replication/cluster/membership.h"

#include <utility>

namespace sessiond {

std::string_view MemberStateName(MemberState state) {
  switch (state) {
    case MemberState::kAlive:
      return "alive";
    case MemberState::kSuspect:
      return "suspect";
    case MemberState::kDead:
      return "dead";
    case MemberState::kLeft:
      return "left";
  }
  return "unknown";
}

std::string_view MemberEventKindName(MemberEvent::Kind kind) {
  switch (kind) {
    case MemberEvent::Kind::kJoined:
      return "joined";
    case MemberEvent::Kind::kRestarted:
      return "restarted";
    case MemberEvent::Kind::kSuspected:
      return "suspected";
    case MemberEvent::Kind::kRecovered:
      return "recovered";
    case MemberEvent::Kind::kDied:
      return "died";
    case MemberEvent::Kind::kLeft:
      return "left";
  }
  return "unknown";
}

Membership::Membership(const NodeIdentity& self, std::string self_address, int64_t now_ms)
    : self_id_(self.node_id) {
  Member member;
  member.node_id = self.node_id;
  member.incarnation = self.incarnation;
  member.address = std::move(self_address);
  member.since_ms = now_ms;
  member.self = true;
  members_.emplace(self.node_id, std::move(member));
}

void Membership::SetSelfAddress(std::string address) {
  members_.find(self_id_)->second.address = std::move(address);
}

void Membership::OnContact(const PeerIdentity& peer, int64_t now_ms) {
  if (peer.node_id == self_id_) return;
  auto it = members_.find(peer.node_id);
  if (it == members_.end()) {
    Member member;
    member.node_id = peer.node_id;
    member.incarnation = peer.incarnation;
    member.address = peer.listen_address;
    member.state = MemberState::kDead;  // so the event's previous state says "was not here"
    it = members_.emplace(peer.node_id, std::move(member)).first;
    Change(it->second, MemberState::kAlive, MemberEvent::Kind::kJoined, now_ms, 0);
    return;
  }
  Member& member = it->second;
  if (!peer.listen_address.empty()) member.address = peer.listen_address;
  if (peer.incarnation != member.incarnation) {
    const uint64_t previous = std::exchange(member.incarnation, peer.incarnation);
    Change(member, MemberState::kAlive, MemberEvent::Kind::kRestarted, now_ms, previous);
    return;
  }
  if (member.state != MemberState::kAlive) {
    Change(member, MemberState::kAlive, MemberEvent::Kind::kRecovered, now_ms, member.incarnation);
  }
}

void Membership::OnHeard(std::string_view node_id, uint64_t incarnation, int64_t now_ms) {
  auto it = members_.find(node_id);
  if (it == members_.end()) return;
  Member& member = it->second;
  if (member.self || member.incarnation != incarnation) return;
  if (member.state == MemberState::kSuspect || member.state == MemberState::kDead) {
    Change(member, MemberState::kAlive, MemberEvent::Kind::kRecovered, now_ms, member.incarnation);
  }
}

void Membership::MarkSuspect(std::string_view node_id, int64_t now_ms) {
  auto it = members_.find(node_id);
  if (it == members_.end() || it->second.self || it->second.state != MemberState::kAlive) return;
  Change(it->second, MemberState::kSuspect, MemberEvent::Kind::kSuspected, now_ms,
         it->second.incarnation);
}

void Membership::MarkDead(std::string_view node_id, int64_t now_ms) {
  auto it = members_.find(node_id);
  if (it == members_.end() || it->second.self) return;
  const MemberState state = it->second.state;
  if (state != MemberState::kAlive && state != MemberState::kSuspect) return;
  Change(it->second, MemberState::kDead, MemberEvent::Kind::kDied, now_ms, it->second.incarnation);
}

void Membership::MarkLeft(std::string_view node_id, int64_t now_ms) {
  auto it = members_.find(node_id);
  if (it == members_.end() || it->second.state == MemberState::kLeft) return;
  Change(it->second, MemberState::kLeft, MemberEvent::Kind::kLeft, now_ms, it->second.incarnation);
}

const Member* Membership::Find(std::string_view node_id) const {
  auto it = members_.find(node_id);
  return it == members_.end() ? nullptr : &it->second;
}

std::vector<Member> Membership::members() const {
  std::vector<Member> out;
  out.reserve(members_.size());
  for (const auto& [id, member] : members_) out.push_back(member);
  return out;
}

std::vector<std::string> Membership::LivePeers() const {
  std::vector<std::string> out;
  for (const auto& [id, member] : members_) {
    if (!member.self &&
        (member.state == MemberState::kAlive || member.state == MemberState::kSuspect)) {
      out.push_back(id);
    }
  }
  return out;
}

Membership::ListenerId Membership::AddListener(Listener listener) {
  const ListenerId id = next_listener_id_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void Membership::RemoveListener(ListenerId id) { listeners_.erase(id); }

void Membership::Change(Member& member, MemberState state, MemberEvent::Kind kind, int64_t now_ms,
                        uint64_t previous_incarnation) {
  MemberEvent event{kind, {}, member.state, previous_incarnation};
  member.state = state;
  member.since_ms = now_ms;
  event.member = member;
  // Listeners may add or remove listeners: walk a snapshot of the ids, and skip the removed.
  std::vector<ListenerId> ids;
  ids.reserve(listeners_.size());
  for (const auto& [id, listener] : listeners_) ids.push_back(id);
  for (ListenerId id : ids) {
    auto it = listeners_.find(id);
    if (it == listeners_.end()) continue;
    // A copy: the listener may remove itself while it runs.
    const Listener listener = it->second;
    listener(event);
  }
}

}  // namespace sessiond
