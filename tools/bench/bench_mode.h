// BenchMode: one row of the comparison, by name — a daemon mode plus the flags that make it a
// variant worth its own row, so that variants run side by side in one bench run:
//
//   standalone, delta, backup, redis   the daemon's modes with their defaults
//   delta-async, delta-sync            delta with --replication-ack async / sync
//   backup-async, backup-sync          backup with --replication-ack async / sync
//   redis-nc                           redis with the near cache (--redis-near-cache)
//   redis-direct                       no sidecar: the bench talks to Redis itself
//
// Threading: a value type.
#ifndef SESSIOND_TOOLS_BENCH_BENCH_MODE_H_
#define SESSIOND_TOOLS_BENCH_BENCH_MODE_H_

#include <string>
#include <string_view>
#include <vector>

#include "sessiond/status.h"

namespace sessiond::bench {

struct BenchMode {
  std::string name;         // as the row shows it: "redis-nc"
  std::string daemon_mode;  // sessiond's --mode (or "redis-direct"): "redis"
  // --replication-ack the variant pins; "" = the bench's --replication-ack, if any.
  std::string replication_ack;
  std::vector<std::string> extra_args;  // more flags for every node: {"--redis-near-cache"}

  // INVALID_ARGUMENT, naming every known mode, for anything else.
  static Result<BenchMode> Parse(std::string_view name);
  // Every name Parse accepts, comma-separated, for help texts.
  static std::string KnownNames();

  // Nodes that form a cluster with peer links (delta, backup).
  bool clustered() const { return daemon_mode == "delta" || daemon_mode == "backup"; }
  // A session written at one node is readable at another (all but standalone).
  bool shares_sessions() const { return daemon_mode != "standalone"; }
  // The bench starts a redis-server for it (redis modes and redis-direct).
  bool uses_redis() const { return daemon_mode == "redis" || daemon_mode == "redis-direct"; }
  // No sidecar at all: the app servers are the bench itself.
  bool direct() const { return daemon_mode == "redis-direct"; }
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_BENCH_MODE_H_
