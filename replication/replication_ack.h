// ReplicationAck: when a clustered mode answers a client's write (--replication-ack).
//
//   kAsync  at once, after the local change; the peers get it in the background (delta's
//           default, as in Tomcat's DeltaManager).
//   kSync   only when every peer the change must reach confirmed it (backup's default, as in
//           Tomcat's BackupManager); a write nobody could confirm in time answers UNAVAILABLE.
#ifndef SESSIOND_REPLICATION_REPLICATION_ACK_H_
#define SESSIOND_REPLICATION_REPLICATION_ACK_H_

#include <string_view>

namespace sessiond {

enum class ReplicationAck { kAsync, kSync };

// "async", "sync".
inline std::string_view ReplicationAckName(ReplicationAck ack) {
  return ack == ReplicationAck::kSync ? "sync" : "async";
}

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_REPLICATION_ACK_H_
