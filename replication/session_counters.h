// SessionCounters: what every mode counts of the client operations, reported in Stats() (and so
// on /metrics and `sessionctl stats`) under the same names whichever mode runs.
#ifndef SESSIOND_REPLICATION_SESSION_COUNTERS_H_
#define SESSIOND_REPLICATION_SESSION_COUNTERS_H_

#include <cstdint>

#include "sessiond/v1/sessiond.pb.h"

namespace sessiond {

struct SessionCounters {
  uint64_t created = 0;
  uint64_t updated = 0;
  uint64_t rotated = 0;
  uint64_t invalidated = 0;
  uint64_t expired = 0;
  uint64_t update_conflicts = 0;

  // Adds them to `stats` as sessions_created, sessions_updated, sessions_rotated,
  // sessions_invalidated, sessions_expired and update_conflicts.
  void AddTo(v1::NodeStats& stats) const {
    auto& c = *stats.mutable_counters();
    c["sessions_created"] = created;
    c["sessions_updated"] = updated;
    c["sessions_rotated"] = rotated;
    c["sessions_invalidated"] = invalidated;
    c["sessions_expired"] = expired;
    c["update_conflicts"] = update_conflicts;
  }
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_SESSION_COUNTERS_H_
