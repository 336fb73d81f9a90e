// BackupManager: backup mode, Tomcat's BackupManager / LazyReplicatedMap without its limits.
//
// A session's primary is the node that created it or last took it over. `backups` other nodes,
// picked by rendezvous hashing over the live members (placement.h), hold full copies; every
// other node holds a proxy entry: the session's placement (PlacementTable). Creating, moving or
// removing a session updates the proxies; ordinary updates go to the backups only, so the bytes
// a write costs stay flat as the cluster grows. Design and promises: docs/backup.md.
//
//   - Access anywhere: on a node that is not the primary, an operation is forwarded to the
//     primary (or a backup that has promoted itself). With move_on_access (the sticky
//     load-balancer case) the primary hands the session over in the same reply once move_after
//     accesses in a row came from that node (move_after 0: the node takes it over at once). A
//     move keeps the old primary as a backup and copies the session only to nodes without a
//     current copy.
//   - Acks: sync (the default) answers a write only when every current backup applied it; a
//     backup that dies stops being waited for and is replaced; a write no backup confirmed in
//     time answers UNAVAILABLE.
//   - Failover, from each node's own membership view, with no coordinator: when a primary dies,
//     its first surviving backup promotes itself, picks new backups and fills them; when a
//     backup dies, the primary refills. A node that meets a new member sends it the placements
//     of its primaries and fills the backups that were short. Stop() hands primaries over to
//     their backups and tells the primaries of its backup copies to refill elsewhere.
//   - Versions: the primary is authoritative; backups apply its changes only in version order
//     and receive the whole session again on a gap, so a CONFLICT answer is the same wherever
//     the session is read.
//   - Partitions: both sides serve. When they meet again, two primaries of one session settle
//     on the one rendezvous ranks higher for it (both sides compute the same); the loser takes
//     the winner's copy and placement, and the writes it took meanwhile are lost. A node told
//     by the old primary that a hand-over to it happened (its reply was lost) accepts it.
//
// Threading: one event loop, the executor given to the constructor, which must also be the
// Cluster's. Every method is called there; nothing blocks it.
#ifndef SESSIOND_REPLICATION_BACKUP_BACKUP_MANAGER_H_
#define SESSIOND_REPLICATION_BACKUP_BACKUP_MANAGER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "replication/cluster/cluster.h"
#include "replication/replication_ack.h"
#include "replication/session_manager.h"
#include "replication/standalone_manager.h"

namespace sessiond {

struct BackupOptions {
  ReplicationAck ack = ReplicationAck::kSync;
  // --backups: full copies besides the primary's (at most the live members - 1 are used).
  uint32_t backups = 1;
  // --backup-move-on-access: a node that serves a session it is not primary of takes it over
  // (true) or forwards the operation to the primary (false).
  bool move_on_access = true;
  // --backup-move-after: with move_on_access, how many consecutive accesses to a session from
  // one node (no other access between them) are forwarded to the primary before the next one
  // takes it over. 0: the first access moves it. The default 1 moves a session on the second
  // access in a row, so the rare request a sticky load balancer sends elsewhere costs one
  // forward instead of a move there and another one back.
  uint32_t move_after = 1;
  // sync: how long a write waits for its backups' (and, on create, the proxies') acks.
  std::chrono::milliseconds ack_timeout{2000};
  // How long a fetch, forward or cluster-wide query may take, retries included.
  std::chrono::milliseconds fetch_timeout{2000};
  // How long Stop() may spend handing sessions over.
  std::chrono::milliseconds handoff_timeout{5000};
  // An access replicates to the backups when the last one replicated is older than
  // max_idle_s / touch_divisor.
  uint32_t touch_divisor = 4;
  // Copies per BackupPut and placements per BackupProxyUpdate when many are sent at once
  // (failover, joins), and how many fill batches may await their ack per peer.
  size_t batch_sessions = 256;
  size_t batch_placements = 4096;
  size_t fill_window = 4;
  // Tests only: a backup message (or reply) to `node` for which this returns true is dropped
  // instead of sent, as a link that broke right then would lose it.
  std::function<bool(std::string_view node, const peer::v1::PeerEnvelope& envelope)> drop_for_test;
};

class BackupManager final : public SessionManager {
 public:
  // Runs on `executor` and replicates through `cluster`, which is not owned, must outlive the
  // manager and must be started by the owner (before or after this manager's Start()).
  // options.node_id must be the cluster's own node id.
  BackupManager(asio::any_io_executor executor, ManagerOptions options, Cluster* cluster,
                BackupOptions backup);
  ~BackupManager() override;

  std::string_view mode() const override { return "backup"; }
  // Subscribes to the cluster's backup messages and member events, and arms the expiry timer.
  asio::awaitable<Status> Start() override;
  // Hands every primary over to a backup and every backup copy back to its primary (bounded by
  // handoff_timeout), then ends the subscriptions and the timer. The owner then calls
  // Cluster::Leave.
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
  // Over the full copies this node holds, as primary or as backup.
  std::optional<ContentDigest> Digest() const override;
  // sessiond_sessions_{primary,backup,proxy,under_replicated} and the proxy table's bytes.
  void AppendMetrics(std::string& out) const override;

  // Sessions held per role, and sessions this node is primary of with fewer confirmed backups
  // than min(backups, live peers) right now (for tests and /cluster).
  struct RoleCounts {
    uint64_t primary = 0;
    uint64_t backup = 0;
    uint64_t proxy = 0;
    uint64_t under_replicated = 0;
  };
  RoleCounts Roles() const;

  // Expires every primary session due at the clock's now and tells its backups and proxies;
  // returns how many.
  size_t ExpireDue();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_BACKUP_BACKUP_MANAGER_H_
