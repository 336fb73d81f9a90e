// Membership: this node's view of the cluster: every member, its incarnation and its state.
//
// Member states:
//
//   first contact --> kAlive --silent--> kSuspect --silent--> kDead
//                       ^                   |                   |
//                       +-------heard-------+-------heard-------+
//   Leave message: any state --> kLeft
//   contact from a new incarnation: any state --> kAlive (a restart)
//
// A member enters the view at its first completed handshake (so every member was met directly,
// and authenticated when a secret is set). A handshake from a new incarnation of a known
// member is a restart: the member is alive again, but as a process that lost its state, and the
// event says so. Listeners hear of every change, on the event loop, as it happens, so that
// modes can react (resend, rebalance, stop waiting for an ack).
//
// The view holds no time source and does no I/O: Cluster feeds it.
//
// Threading: not thread-safe; owned by one event loop. Listeners are called synchronously and
// may add or remove listeners, and read the view.
#ifndef SESSIOND_REPLICATION_CLUSTER_MEMBERSHIP_H_
#define SESSIOND_REPLICATION_CLUSTER_MEMBERSHIP_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "replication/cluster/node_identity.h"

namespace sessiond {

enum class MemberState { kAlive, kSuspect, kDead, kLeft };

// "alive", "suspect", "dead", "left".
std::string_view MemberStateName(MemberState state);

struct Member {
  std::string node_id;
  uint64_t incarnation = 0;
  std::string address;  // where it accepts peer links
  MemberState state = MemberState::kAlive;
  int64_t since_ms = 0;  // when it entered `state`
  bool self = false;
};

struct MemberEvent {
  enum class Kind {
    kJoined,     // first contact: a new member, alive
    kRestarted,  // contact from a new incarnation of a known member: alive, state lost
    kSuspected,  // alive -> suspect
    kRecovered,  // suspect or dead -> alive, same incarnation (a partition healed)
    kDied,       // alive or suspect -> dead
    kLeft,       // said goodbye
  };
  Kind kind;
  Member member;  // after the change
  MemberState previous_state = MemberState::kAlive;
  uint64_t previous_incarnation = 0;  // differs from member.incarnation only for kRestarted
};

// "joined", "restarted", "suspected", "recovered", "died", "left".
std::string_view MemberEventKindName(MemberEvent::Kind kind);

class Membership {
 public:
  using Listener = std::function<void(const MemberEvent&)>;
  using ListenerId = uint64_t;

  // The view starts with this node alone, alive.
  Membership(const NodeIdentity& self, std::string self_address, int64_t now_ms);

  // Sets this node's own address, known once its listener is bound.
  void SetSelfAddress(std::string address);

  // A handshake with `peer` completed: it joins, restarts, or recovers.
  void OnContact(const PeerIdentity& peer, int64_t now_ms);
  // A message from `incarnation` of `node_id` arrived: a suspect or dead member recovers.
  // Messages from other incarnations, left members and strangers change nothing.
  void OnHeard(std::string_view node_id, uint64_t incarnation, int64_t now_ms);
  // Failure detector verdicts. Each applies only to a member that is alive or suspect; marking
  // suspect applies only to an alive one.
  void MarkSuspect(std::string_view node_id, int64_t now_ms);
  void MarkDead(std::string_view node_id, int64_t now_ms);
  // `node_id` left gracefully (also valid for this node itself, when it leaves).
  void MarkLeft(std::string_view node_id, int64_t now_ms);

  // The member, or null. The pointer is valid until the next change of the view.
  const Member* Find(std::string_view node_id) const;
  const Member& self() const { return *Find(self_id_); }
  // Every member, this node included, by node id.
  std::vector<Member> members() const;
  // The other members that are alive or suspect: the ones a mode still replicates to.
  std::vector<std::string> LivePeers() const;

  // Adds a listener, called for every MemberEvent from now on. Returns its id.
  ListenerId AddListener(Listener listener);
  void RemoveListener(ListenerId id);

 private:
  void Change(Member& member, MemberState state, MemberEvent::Kind kind, int64_t now_ms,
              uint64_t previous_incarnation);

  std::string self_id_;
  std::map<std::string, Member, std::less<>> members_;
  std::map<ListenerId, Listener> listeners_;
  ListenerId next_listener_id_ = 1;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_CLUSTER_MEMBERSHIP_H_
