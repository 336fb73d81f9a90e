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
// Threading: one event loop, the executor given to the constructor, which must also be the
// Cluster's. Every method is called there.
#ifndef SESSIOND_REPLICATION_DELTA_DELTA_MANAGER_H_
#define SESSIOND_REPLICATION_DELTA_DELTA_MANAGER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "replication/cluster/cluster.h"
#include "replication/session_manager.h"
#include "replication/standalone_manager.h"

namespace sessiond {

enum class ReplicationAck { kAsync, kSync };

struct DeltaOptions {
  ReplicationAck ack = ReplicationAck::kAsync;
  // sync: how long a write waits for its peers' acks before answering UNAVAILABLE.
  std::chrono::milliseconds ack_timeout{2000};
  // An access replicates when the last replicated one is older than max_idle_s / touch_divisor.
  uint32_t touch_divisor = 4;
  // How many removed session ids are remembered, so late deltas cannot resurrect them.
  size_t max_removed_ids = 100'000;
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

  // Expires every session due at the clock's now and tells the peers; returns how many.
  size_t ExpireDue();

  // A hash of every live session's replicated content (id, times but last access, principal,
  // max_idle_s, attributes), independent of versions and arrival order: equal on two nodes
  // exactly when they hold the same sessions.
  uint64_t ContentDigest() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_DELTA_DELTA_MANAGER_H_
