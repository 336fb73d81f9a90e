// NodeIdentity: who a node is to its peers, and the handshake settings derived from it.
#ifndef SESSIOND_REPLICATION_CLUSTER_NODE_IDENTITY_H_
#define SESSIOND_REPLICATION_CLUSTER_NODE_IDENTITY_H_

#include <cstdint>
#include <string>

namespace sessiond {

// Bumped when the peer protocol changes incompatibly; peers must speak the same version.
inline constexpr uint32_t kPeerProtocolVersion = 1;

struct NodeIdentity {
  // Nodes of different clusters refuse each other's links, so two clusters on one network
  // cannot merge by a typo in --peers.
  std::string cluster;
  // Unique within the cluster (--node-id).
  std::string node_id;
  // Changes at every start of the process, so that peers can tell a restarted node (which
  // lost its state) from one that was only unreachable. Cluster::NewIncarnation() makes one.
  uint64_t incarnation = 0;
};

// What a handshake learned about the node at the other end of a link.
struct PeerIdentity {
  std::string node_id;
  uint64_t incarnation = 0;
  std::string listen_address;  // where it accepts peer links, "host:port"; may be ""
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_CLUSTER_NODE_IDENTITY_H_
