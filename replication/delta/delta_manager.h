// DeltaManager: delta mode, Tomcat's DeltaManager. Every node holds every session in full.
//
// Every client operation is applied to the local SessionStore first, then becomes a
// SessionDelta (create / update / throttled touch / invalidate / expire / rotate id) queued for
// every live peer. The deltas of one event-loop turn are coalesced into one DeltaBatch per peer.
// Peers apply a delta's changes field by field, only where its (Lamport clock, origin node)
// stamp is newer than the one they hold (see StampTable), so concurrent writes to one session
// from different nodes converge to the same state on every node whatever order they arrive in.
// Peers publish what they apply as watch events, so a watcher on any node sees changes made on
// any node.
//
// Acks (--replication-ack): async answers the client at once. sync answers only when every live
// peer has confirmed the batch with a DeltaAck; a peer declared dead or left stops being waited
// for, and a batch not confirmed by all live peers within ack_timeout answers UNAVAILABLE (the
// change stays applied locally: the client must not assume it replicated, nor that it did not).
//
// Expiry runs on every node; the first node to expire a session tells the others. Touches
// replicate at most once per max_idle_s / touch_divisor, carrying an access time that far ahead
// so that peers never expire a session before the node serving it does.
//
// State transfer: a node that joins a cluster (DeltaOptions::join_cluster, set when it has
// seeds) asks one ready peer for every session. The peer streams them in lz4-compressed chunks,
// at most transfer_window unacknowledged; the joining node buffers the live delta batches that
// arrive meanwhile, merges the chunks, then the buffered batches (stamps make both idempotent
// and order-insensitive), and only then reports ready. If the sender dies, leaves, restarts or
// its link breaks, the node asks another peer and keeps what it merged. A joining node with no
// ready peer within join_window is the first node of a new cluster and becomes ready.
//
// Healing: every batch sent to a peer is kept, up to resend_buffer_batches per peer, by the seq
// the cluster gave it; when a link comes back, the batches past the peer's acked seq are sent
// again. A gap the buffer no longer covers, or a batch that could not be sent to a live peer,
// calls for a resync with that peer: an anti-entropy round at once. Anti-entropy (every
// anti_entropy_interval, and on demand) exchanges 256 bucket digests of the session ids and
// field stamps; for each differing bucket both sides pull the other's stamped sessions and
// recent removals and merge them, so divergence heals and removed sessions stay removed.
// Protocol: docs/peer-protocol.md; design notes: docs/delta.md.
//
// Threading: one event loop, the executor given to the constructor, which must also be the
// Cluster's. Every method is called there. Serializing, compressing and parsing transfer chunks
// runs on one worker thread the manager owns, which posts its results back to the loop.
#ifndef SESSIOND_REPLICATION_DELTA_DELTA_MANAGER_H_
#define SESSIOND_REPLICATION_DELTA_DELTA_MANAGER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "replication/cluster/cluster.h"
#include "replication/replication_ack.h"
#include "replication/session_manager.h"
#include "replication/standalone_manager.h"

namespace sessiond {

struct DeltaOptions {
  ReplicationAck ack = ReplicationAck::kAsync;
  // sync: how long a write waits for its peers' acks before answering UNAVAILABLE.
  std::chrono::milliseconds ack_timeout{2000};
  // An access replicates when the last replicated one is older than max_idle_s / touch_divisor.
  uint32_t touch_divisor = 4;
  // How many removed session ids are remembered, so late deltas cannot resurrect them.
  size_t max_removed_ids = 100'000;

  // The node joins a cluster that may hold sessions already (it was given seeds): it reports
  // ready only after a state transfer from a peer. false: it is the first node, ready at once.
  bool join_cluster = false;
  // false: a joining node takes no state transfer (it is ready at once and fills by deltas and
  // anti-entropy only).
  bool state_transfer = true;
  // How long a joining node waits for a ready peer before it declares itself the first node of
  // a new cluster (and, if a transfer's sender died with no other peer left, before it gives up
  // waiting for one and serves what it has).
  std::chrono::milliseconds join_window{5000};
  // Serialized session bytes per transfer chunk (before lz4), and chunks a sender may have
  // unacknowledged: the back-pressure that keeps a transfer from filling the link's queue.
  size_t transfer_chunk_bytes = 1u << 20;
  uint32_t transfer_window = 4;
  // A transfer from which nothing arrived for this long is abandoned (and, for a joining node,
  // asked of another peer).
  std::chrono::milliseconds transfer_stall_timeout{10'000};
  // Live delta batches a joining node holds until its transfer is merged; beyond this many
  // deltas it applies them at once (anti-entropy repairs what that drops).
  size_t max_buffered_deltas = 1'000'000;
  // Batches kept per peer to resend after its link breaks and comes back.
  size_t resend_buffer_batches = 4096;
  // How often to compare digests with every live peer; 0: only when a resync is called for
  // (and RunAntiEntropy()).
  std::chrono::milliseconds anti_entropy_interval{10'000};
};

class DeltaManager final : public SessionManager {
 public:
  // Runs on `executor` and replicates through `cluster`, which is not owned, must outlive the
  // manager and must be started by the owner (before or after this manager's Start()).
  DeltaManager(asio::any_io_executor executor, ManagerOptions options, Cluster* cluster,
               DeltaOptions delta);
  ~DeltaManager() override;

  std::string_view mode() const override { return "delta"; }
  // Subscribes to the cluster's delta messages and arms the expiry timer.
  asio::awaitable<Status> Start() override;
  // Ends the subscription and the timer; writes waiting for acks answer UNAVAILABLE.
  asio::awaitable<void> Stop() override;

  asio::awaitable<Result<v1::Session>> Create(v1::CreateRequest request) override;
  asio::awaitable<Result<v1::Session>> Get(v1::GetRequest request) override;
  asio::awaitable<Result<v1::Session>> Update(v1::UpdateRequest request) override;
  asio::awaitable<Status> Invalidate(v1::InvalidateRequest request) override;
  asio::awaitable<Result<v1::Session>> RotateId(v1::RotateIdRequest request) override;
  asio::awaitable<Result<v1::SessionList>> FindByPrincipal(
      v1::FindByPrincipalRequest request) override;
  std::unique_ptr<WatchHandle> Watch(std::vector<std::string> ids, EventSink sink) override;
  v1::NodeStats Stats() const override;
  Readiness Ready() const override;
  std::optional<ContentDigest> Digest() const override;
  // State-transfer progress and the healing counters, as Prometheus families.
  void AppendMetrics(std::string& out) const override;

  // Expires every session due at the clock's now and tells the peers; returns how many.
  size_t ExpireDue();
  // Starts an anti-entropy round with every live peer now (the timer's job; tests call it).
  void RunAntiEntropy();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_DELTA_DELTA_MANAGER_H_
