// ClusterView: a snapshot of one node's cluster (members, links, counters) for the admin
// endpoint's /cluster (JSON) and /metrics (Prometheus text), and for sessionctl.
#ifndef SESSIOND_REPLICATION_CLUSTER_CLUSTER_VIEW_H_
#define SESSIOND_REPLICATION_CLUSTER_CLUSTER_VIEW_H_

#include <cstdint>
#include <string>
#include <vector>

#include "replication/cluster/membership.h"
#include "replication/cluster/node_identity.h"
#include "replication/cluster/peer_link.h"
#include "replication/cluster/peer_network.h"

namespace sessiond {

// One member and, unless it is this node, the link to it.
struct MemberView {
  Member member;
  bool linked = false;  // an established link carries its traffic now
  bool dialed = false;  // when linked: this node dialed it
  std::string remote_address;
  size_t queue_frames = 0;  // outbound queue depth
  size_t queue_bytes = 0;
  uint64_t sent_seq = 0;      // sequenced messages sent to its current incarnation
  uint64_t acked_seq = 0;     // ... of which it acknowledged receiving this many
  uint64_t received_seq = 0;  // sequenced messages received from it
  int64_t rtt_ms = -1;        // last heartbeat round trip; -1 until measured
  int64_t heard_ago_ms = -1;  // since its last message; -1 if never
  LinkCounters counters;      // every link to it, closed ones included

  // Sequenced messages sent but not yet acknowledged: the replication lag, in messages.
  uint64_t unacked() const { return sent_seq - acked_seq; }
};

struct ClusterView {
  NodeIdentity self;
  std::string listen_address;
  std::string advertise_address;
  std::vector<MemberView> members;  // this node included, by node id
  NetworkCounters counters;
  uint64_t messages_unhandled = 0;  // delivered kinds nobody subscribed to

  // {"cluster": ..., "node_id": ..., "members": [{"node_id": ..., "state": "alive", ...}], ...}
  std::string ToJson() const;
  // Appends the sessiond_peer_* and sessiond_cluster_* metric families, with HELP and TYPE.
  void AppendPrometheus(std::string& out) const;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_CLUSTER_CLUSTER_VIEW_H_
