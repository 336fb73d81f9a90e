// ModeRun: everything measured for one mode on one cluster size in one repetition — one row of
// the bench's results before repetitions are combined.
#ifndef SESSIOND_TOOLS_BENCH_MODE_RUN_H_
#define SESSIOND_TOOLS_BENCH_MODE_RUN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tools/bench/lost_write_ledger.h"
#include "tools/bench/redis_memory_probe.h"
#include "tools/bench/workload_result.h"

namespace sessiond::bench {

// What killing one node mid-load cost.
struct FailoverOutcome {
  int victim = -1;                   // node index (0-based)
  double killed_at_s = 0;            // seconds into the measured interval
  uint64_t failed_requests = 0;      // failed requests in the measured interval
  uint64_t failed_after_kill = 0;    // of which after the kill
  LostWriteLedger::Verdict verdict;  // sessions and acknowledged writes lost
  // Seconds from the kill until the cluster was fully redundant again; nullopt when it was not
  // within the wait, or the mode has no redundancy to restore (see redundancy_note).
  std::optional<double> redundancy_restored_s;
  std::string redundancy_note;  // how it was judged, or why there is no number
};

struct ModeRun {
  std::string mode;  // a BenchMode name (standalone, delta-sync, redis-nc, ...) or the target's
  int nodes = 0;
  int repetition = 0;  // 1-based
  // Set when the run did not happen: "unavailable: mode delta is not available in this build
  // yet" or "failed: ...". The row shows it instead of numbers.
  std::string not_run;

  WorkloadResult load;                      // its ledger has been checked and emptied
  std::optional<double> peer_bytes_per_op;  // summed over every node's peer links
  std::optional<double> peer_frames_per_op;
  std::vector<std::optional<uint64_t>> node_rss_bytes;  // peak during the run, per node
  std::optional<uint64_t> redis_rss_bytes;              // the bench's own redis-server
  // CPU time per operation over the measured interval, in microseconds: all the nodes together
  // (a killed node counts up to its last sample), and the bench's own redis-server.
  std::optional<double> node_cpu_us_per_op;
  std::optional<double> redis_cpu_us_per_op;
  std::optional<LostWriteLedger::Verdict> verdict;  // with --verify, without failover
  std::optional<FailoverOutcome> failover;
  // Redis's memory for the sessions created before the load (modes with the bench's own Redis).
  std::optional<RedisMemory> redis_memory;
  // Open loop: the requests per second asked for (0 = closed loop), and with --rate-of-max the
  // closed-loop requests per second of the calibration run it was derived from.
  double offered_rate = 0;
  std::optional<double> calibrated_max_rate;
  // The machine's 1-minute load average at the end of the run (/proc/loadavg): how busy the
  // shared cores were while this row was measured.
  std::optional<double> load_average;
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_MODE_RUN_H_
