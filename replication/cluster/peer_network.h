// PeerNetwork: every peer link of one node: the listener, the dialing side, and which link
// carries the traffic of each peer.
//
// The network listens on --peer-listen and dials every address it knows (the seeds from
// --peers, plus addresses learned from peers) until it has an established link to the node
// there, reconnecting with exponential backoff (and jitter) when a link goes down. It keeps at
// most one active link per peer: when two nodes dial each other at once, both keep the link
// dialed by the node with the lower node id and drain the other (a draining link still delivers
// what was already sent on it, and what was queued on it moves to the kept link); when a peer
// comes back with a new incarnation, its new link replaces the old one.
//
// Sequencing: messages of the replication modes (PeerEnvelope kinds Probe and up) are numbered
// per (this incarnation, peer incarnation) stream, 1, 2, 3..., across reconnects; every envelope
// sent carries the highest seq received from the peer as its ack. Membership and handshake
// messages have seq 0. A new incarnation of the peer restarts both streams.
//
// Threading: everything runs on the executor given to the constructor; call every method from
// it. Observer calls come from it too, and may call back into the network.
#ifndef SESSIOND_REPLICATION_CLUSTER_PEER_NETWORK_H_
#define SESSIOND_REPLICATION_CLUSTER_PEER_NETWORK_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "replication/cluster/node_identity.h"
#include "replication/cluster/peer_link.h"
#include "sessiond/asio.h"
#include "sessiond/endpoint.h"
#include "sessiond/peer/v1/peer.pb.h"
#include "sessiond/status.h"

namespace sessiond {

struct PeerNetworkOptions {
  NodeIdentity self;
  // The shared cluster secret; empty: links are not authenticated.
  std::string secret;
  // --peer-listen. Port 0 picks a free port (see listen_endpoint()).
  Endpoint listen;
  // The address peers should dial to reach this node; "" means the bound listen address, which
  // is only right when that is not a wildcard (0.0.0.0, ::).
  std::string advertise_address;
  // --peers: dialed until linked, for as long as the network runs. May include this node.
  std::vector<Endpoint> seeds;
  PeerLinkOptions link;
  std::chrono::milliseconds connect_timeout{1000};
  // Backoff between failed dials of one address: doubles from min to max, with +-20% jitter.
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{5000};
  // Inbound connections still in their handshake beyond this are closed at once.
  size_t max_pending_handshakes = 64;
};

inline constexpr size_t kRefuseReasonCount = peer::v1::RefuseReason_ARRAYSIZE;

// Totals since Start(), for /metrics.
struct NetworkCounters {
  uint64_t dials = 0;          // TCP connection attempts
  uint64_t dial_failures = 0;  // attempts that did not connect (refused, unreachable, timeout)
  uint64_t accepted = 0;       // inbound connections
  uint64_t handshakes = 0;     // handshakes completed
  // Handshakes refused by this node, and by the other side, per RefuseReason.
  std::array<uint64_t, kRefuseReasonCount> refused{};
  std::array<uint64_t, kRefuseReasonCount> refused_by_peer{};
  uint64_t duplicate_links = 0;         // links drained because their pair had a better one
  uint64_t sends_without_link = 0;      // Send() refused: no established link to the peer
  uint64_t sends_queue_full = 0;        // Send() refused: the link's queue was full
  uint64_t messages_dropped_stale = 0;  // received from an incarnation already replaced
};

// One peer, as the network sees it.
struct PeerLinkStatus {
  PeerIdentity identity;
  bool linked = false;         // an established link carries its traffic
  bool dialed = false;         // when linked: this node dialed that link
  std::string remote_address;  // when linked: the socket's far end
  size_t queue_frames = 0;
  size_t queue_bytes = 0;
  uint64_t sent_seq = 0;      // last seq sent to the peer's current incarnation
  uint64_t acked_seq = 0;     // highest of those the peer acknowledged receiving
  uint64_t received_seq = 0;  // highest seq received from it
  LinkCounters counters;      // every link to this node id, closed ones included
};

class PeerNetwork {
 public:
  class Observer {
   public:
    virtual ~Observer() = default;
    // `peer` has an established link, where it had none, or it came back with a new
    // incarnation (OnPeerDown for the old one comes first).
    virtual void OnPeerUp(const PeerIdentity& peer) = 0;
    // The active link to `peer` closed and no other replaced it.
    virtual void OnPeerDown(const PeerIdentity& peer, const Status& why) = 0;
    // Any message after the handshake, from the peer's current incarnation.
    virtual void OnPeerMessage(const PeerIdentity& peer,
                               const peer::v1::PeerEnvelope& envelope) = 0;
  };

  // Runs on `executor`. `observer` is not owned and must outlive the network (or its Stop()).
  PeerNetwork(asio::any_io_executor executor, PeerNetworkOptions options, Observer* observer);
  // Stops (as Stop()).
  ~PeerNetwork();
  PeerNetwork(const PeerNetwork&) = delete;
  PeerNetwork& operator=(const PeerNetwork&) = delete;

  // Binds the listener and starts accepting and dialing the seeds. UNAVAILABLE or
  // INVALID_ARGUMENT, with the address and the reason, when the listener cannot be bound.
  Status Start();

  // Graceful shutdown, first half: stops accepting and dialing, and drains every link (what is
  // queued is still sent). Send() fails from now on. Follow with WaitIdle() then Stop().
  void Drain();
  // Completes when every link has closed, or after `timeout`.
  asio::awaitable<void> WaitIdle(std::chrono::milliseconds timeout);
  // Closes everything at once; no observer call follows. Idempotent.
  void Stop();

  // Sends `envelope` to `node_id` on its active link, setting seq (for sequenced kinds) and ack.
  // Returns the seq given (0 for unsequenced kinds). UNAVAILABLE when there is no established
  // link; RESOURCE_EXHAUSTED when its queue is full; TOO_LARGE beyond the frame limit. A refused
  // message uses no seq.
  Result<uint64_t> Send(std::string_view node_id, peer::v1::PeerEnvelope envelope);

  // Dials `address` ("host:port") from now on, unless already known. `node_id` is who is
  // expected there ("" if unknown); other learned addresses of that node are forgotten (it
  // restarted elsewhere). Seeds are never forgotten.
  void AddPeerAddress(std::string_view address, std::string_view node_id);
  // Stops dialing the learned (non-seed) addresses of `node_id`: it left the cluster.
  void ForgetPeerAddresses(std::string_view node_id);

  // The bound listen endpoint (the chosen port when 0 was asked). Valid after Start().
  Endpoint listen_endpoint() const;
  // What this node tells peers to dial.
  const std::string& advertise_address() const;
  // Node ids with an established link.
  std::vector<std::string> LinkedPeers() const;
  // Every node id ever linked, with its link's state.
  std::vector<PeerLinkStatus> Peers() const;
  // One of them; nullopt if `node_id` was never linked.
  std::optional<PeerLinkStatus> LinkStatus(std::string_view node_id) const;
  const NetworkCounters& counters() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_CLUSTER_PEER_NETWORK_H_
