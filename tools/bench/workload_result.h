// WorkloadResult: what one measured run of a LoadDriver observed, and RunProgress: what it shows
// while running.
#ifndef SESSIOND_TOOLS_BENCH_WORKLOAD_RESULT_H_
#define SESSIOND_TOOLS_BENCH_WORKLOAD_RESULT_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tools/bench/histogram.h"
#include "tools/bench/lost_write_ledger.h"

namespace sessiond::bench {

enum class Op { kRead = 0, kWrite = 1, kCreate = 2 };
inline constexpr int kOpCount = 3;
// "read", "write", "create".
const char* OpName(Op op);

// The counts and latencies of one operation (or of all), over the measured interval only.
struct OpStats {
  Histogram latency;  // nanoseconds; from the intended send time in open-loop runs
  uint64_t ok = 0;
  // Failed requests by status code name ("NOT_FOUND", "UNAVAILABLE", ...).
  std::map<std::string, uint64_t> errors;

  uint64_t failed() const;
  void Merge(const OpStats& other);
};

// One second of the run (warm-up included), for the timeline chart and the failover view.
struct TimelineSecond {
  int64_t second = 0;  // relative to the start of the measured interval; negative in warm-up
  uint64_t ok = 0;
  uint64_t failed = 0;
  int64_t p50_ns = 0;
  int64_t p99_ns = 0;
};

struct WorkloadResult {
  std::chrono::nanoseconds measured{0};  // length of the measured interval
  OpStats all;
  OpStats by_op[kOpCount];
  // Open loop: requests that went out later than 1 ms after their intended time (the generator
  // or the system fell behind; their latency includes the wait).
  uint64_t late_sends = 0;
  // Replication visibility: from a write's acknowledgement at node 1 until the reply of the first
  // read at node 2 that returned it (nanoseconds): an upper bound, over by at most that read's
  // round trip, whose distribution is lag_read_rtt. Probes never seen within their deadline are
  // counted apart.
  Histogram lag;
  Histogram lag_read_rtt;
  uint64_t lag_probes = 0;
  // Probes whose first read at node 2 already returned the value: for these the real lag is below
  // what the probe can resolve (one read round trip).
  uint64_t lag_seen_first_read = 0;
  uint64_t lag_unseen = 0;
  std::vector<TimelineSecond> timeline;
  // Every write of the run, when WorkloadOptions::record_writes.
  LostWriteLedger ledger;
  bool interrupted = false;  // stopped early (Ctrl-C)

  // Successful operations per second of the measured interval.
  double throughput() const;
};

// Live counters a driver updates while it runs, for the progress line. Any thread.
struct RunProgress {
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<int> phase{0};  // 0 populate, 1 warm-up, 2 measure, 3 done
  // Set by the bench (Ctrl-C): the driver stops issuing requests and returns what it has.
  std::atomic<bool> stop{false};
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_WORKLOAD_RESULT_H_
