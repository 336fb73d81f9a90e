// Cluster: one node's place in a cluster, and the API the replication modes use.
//
// It puts together the PeerNetwork (links to every peer), the Membership view, the
// FailureDetector, heartbeats and the graceful leave:
//
//   - every heartbeat interval, Tick() sends a Heartbeat on every link and asks the failure
//     detector about every live member, so a silent peer turns suspect, then dead;
//   - any message from a peer is a sign of life; a completed handshake makes the peer a member
//     (or a restarted one, with a new incarnation);
//   - each side of a new link tells the other which peers it is linked to (MemberList), so a
//     node given one seed finds the whole cluster;
//   - Leave() says goodbye to every peer, which marks this node left at once.
//
// For a mode (DeltaManager, BackupManager):
//   - Send(node, envelope) puts a message on the peer's link (seq and ack are filled in);
//   - Subscribe(kind, handler) receives the messages of one kind (Probe and kinds 20 and up);
//   - AddMemberListener(listener) hears of every membership change, and LivePeers() lists the
//     members a change must reach;
//   - AddLinkListener(listener) and LinkStatus(node) tell when to resend what a broken link
//     may have lost.
//
// Threading: everything runs on the executor given to the constructor; call every method, and
// expect every callback, there. Handlers and listeners may call back into the cluster.
#ifndef SESSIOND_REPLICATION_CLUSTER_CLUSTER_H_
#define SESSIOND_REPLICATION_CLUSTER_CLUSTER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "replication/clock.h"
#include "replication/cluster/cluster_view.h"
#include "replication/cluster/failure_detector.h"
#include "replication/cluster/membership.h"
#include "replication/cluster/node_identity.h"
#include "replication/cluster/peer_network.h"
#include "sessiond/asio.h"
#include "sessiond/endpoint.h"
#include "sessiond/peer/v1/peer.pb.h"
#include "sessiond/status.h"

namespace sessiond {

struct ClusterOptions {
  // Who this node is (an incarnation of 0 is replaced by NewIncarnation()), the secret, where
  // to listen, the seeds, and the links' limits and deadlines.
  PeerNetworkOptions network;
  // Heartbeats go to every linked peer at this interval, and the failure detector runs after
  // each round. Zero: no timer; the owner calls Tick() (tests drive time this way).
  std::chrono::milliseconds heartbeat_interval{200};
  FailureDetectorOptions detector;
  // How long Leave() lets the goodbye and the traffic queued before it drain.
  std::chrono::milliseconds leave_timeout{1000};
  // The time heartbeats and failure detection use. Not owned; must outlive the cluster.
  // Required.
  const Clock* clock = nullptr;
};

class Cluster {
 public:
  using MessageHandler =
      std::function<void(const PeerIdentity& from, const peer::v1::PeerEnvelope& envelope)>;

  // A fresh incarnation: 64 random bits (never 0), so that any restart is seen as new.
  static uint64_t NewIncarnation();

  // REQUIRES: options.clock != nullptr. Nothing happens before Start().
  Cluster(asio::any_io_executor executor, ClusterOptions options);
  // Stops (as Stop()): peers see the links break, not a leave.
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Checks the options, binds the peer listener, starts dialing the seeds and the heartbeat
  // timer. INVALID_ARGUMENT for bad options, UNAVAILABLE when the listener cannot be bound.
  Status Start();
  // Graceful leave (on SIGTERM): sends Leave to every linked peer, lets the links drain for at
  // most leave_timeout, then stops. Sends fail from its start on.
  asio::awaitable<void> Leave(std::string reason);
  // Closes every link at once (as a crash looks to peers). Idempotent.
  void Stop();

  // Sends `envelope` (its body set; seq and ack are filled in) to `node_id`. Returns the seq
  // given to it (0 for unsequenced kinds). UNAVAILABLE when no link to the peer is established;
  // RESOURCE_EXHAUSTED when the link's queue is full; TOO_LARGE beyond the frame limit. The
  // message was queued if and only if OK; delivery is not confirmed (watch acked_seq in View(),
  // or have the peer answer).
  Result<uint64_t> Send(std::string_view node_id, peer::v1::PeerEnvelope envelope);

  // Routes every received message of `kind` to `handler` (replacing any earlier one; an empty
  // handler unsubscribes), in the order the peer sent them on a link. Handlers must not throw. Only
  // Probe and the kinds from 20 up (the modes') can be subscribed: INVALID_ARGUMENT otherwise. A
  // message of a kind nobody subscribed is counted and dropped.
  Status Subscribe(peer::v1::PeerEnvelope::BodyCase kind, MessageHandler handler);

  // The membership view, and its listeners (see Membership).
  const Membership& membership() const;
  Membership::ListenerId AddMemberListener(Membership::Listener listener);
  void RemoveMemberListener(Membership::ListenerId id);
  // The other members that are alive or suspect.
  std::vector<std::string> LivePeers() const;

  // Hears when the link to a peer comes up or goes down (`up`), whether or not membership
  // changes: a link can break and come back well within the failure detector's patience. On a
  // link coming up, the messages with seq in (LinkStatus().acked_seq, sent_seq] may have been
  // lost with the old link; the first message from the peer on the new link updates acked_seq.
  using LinkListener = std::function<void(const PeerIdentity& peer, bool up)>;
  uint64_t AddLinkListener(LinkListener listener);
  void RemoveLinkListener(uint64_t id);
  // The link to `node_id`: queue depth, seq and ack, byte and frame counters. nullopt if it
  // was never linked.
  std::optional<PeerLinkStatus> LinkStatus(std::string_view node_id) const;

  // One heartbeat round and one failure-detector pass. The heartbeat timer calls it; tests
  // with heartbeat_interval 0 call it after moving a ManualClock.
  void Tick();

  // A snapshot for /cluster and /metrics.
  ClusterView View() const;
  const NodeIdentity& self() const;
  // The bound peer listener (valid after Start()).
  Endpoint listen_endpoint() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_CLUSTER_CLUSTER_H_
