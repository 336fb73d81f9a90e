// BenchRunner: the mode comparison itself — for every cluster size, every repetition and every
// mode: start a cluster (or use the --target endpoints), populate it, run the workload while
// watching it (progress line, peak memory, and in a failover run the kill -9 and the wait for
// redundancy), read the nodes' peer-link counters, check every acknowledged write, and stop it all.
//
// A mode that cannot run (not in this build, redis-server missing, the driver not wired yet)
// becomes a row "unavailable: <reason>"; the other modes still run.
//
// Threading: Run() blocks the calling thread (the process's main thread: children are spawned
// from it, see ChildProcess). RequestStop() may be called from any thread (a signal watcher).
#ifndef SESSIOND_TOOLS_BENCH_BENCH_RUNNER_H_
#define SESSIOND_TOOLS_BENCH_BENCH_RUNNER_H_

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "sessiond/endpoint.h"
#include "tools/bench/bench_mode.h"
#include "tools/bench/cluster_launcher.h"
#include "tools/bench/load_driver.h"
#include "tools/bench/mode_run.h"
#include "tools/bench/progress_line.h"
#include "tools/bench/workload_options.h"

namespace sessiond::bench {

struct BenchOptions {
  // BenchMode names: standalone, delta, backup, redis, redis-nc, redis-direct, and the
  // delta-sync / delta-async / backup-sync / backup-async variants.
  std::vector<std::string> modes = {"standalone", "delta",    "backup",
                                    "redis",      "redis-nc", "redis-direct"};
  std::vector<int> node_counts = {3};
  int repetitions = 1;
  WorkloadOptions workload;
  // > 0: each row is first run closed loop (a calibration run, not reported as a row), then open
  // loop at this fraction of the requests per second the calibration run served (0.5: the
  // replication lag "at half of maximum load"). Overrides workload.rate.
  double rate_of_max = 0;

  // Network shape added to every peer link and the Redis link (0 = no proxy at all).
  double link_delay_ms = 0;
  double link_jitter_ms = 0;
  uint64_t link_bandwidth_bytes_per_s = 0;

  std::string replication_ack;  // "" = the daemon's default
  std::optional<int> backups;

  // Kill -9 one node (the last) this far into the measured interval (a fraction of it).
  bool failover = false;
  double failover_at = 0.5;
  // How long after the kill to wait for full redundancy before giving up on that number.
  std::chrono::milliseconds redundancy_timeout{30'000};
  // Check every acknowledged write at the end even without a failover.
  bool verify_writes = false;

  // Running nodes to use instead of starting clusters: client endpoints, and optionally their
  // admin endpoints (same order) for /metrics.
  std::vector<Endpoint> targets;
  std::vector<Endpoint> target_admins;

  std::string sessiond_binary = "sessiond";
  std::string redis_binary = "redis-server";
  std::string log_level = "warn";
  // Where clusters keep port files and logs; "" = a fresh directory under $TMPDIR.
  std::string work_dir;
  bool keep_work_dir = false;
};

class BenchRunner {
 public:
  BenchRunner(BenchOptions options, ProgressLine& progress);

  // Runs everything and returns one ModeRun per (nodes, repetition, mode), in that order (with
  // --rate-of-max, a failed calibration run stands in for its row).
  std::vector<ModeRun> Run();

  // Stops at the next opportunity: the current run ends early (its numbers marked interrupted),
  // clusters are stopped, and Run() returns what it has. Any thread.
  void RequestStop() { stop_.store(true); }
  bool stop_requested() const { return stop_.load(); }

  // The directory logs were kept in, when a run failed or keep_work_dir was set ("" otherwise).
  const std::string& kept_work_dir() const { return kept_work_dir_; }

 private:
  // One run of `mode` on `nodes` nodes at `rate` requests/s (0 = closed loop). A calibration run
  // (for --rate-of-max) neither kills a node nor checks writes.
  ModeRun RunOnce(const std::string& mode, int nodes, int repetition, double rate,
                  bool calibration);
  ModeRun RunTarget(int repetition);
  // The workload of a run of `mode`: the bench's at `rate`, plus write records and lag probes
  // where they apply.
  WorkloadOptions WorkloadFor(const BenchMode& mode, bool several_nodes, double rate,
                              bool calibration) const;
  // Drives the load through `driver` on `n` nodes (app servers, for redis-direct) of `launcher`
  // (null for --target) and fills `run`.
  void Measure(ModeRun& run, const BenchMode& mode, ClusterLauncher* launcher, LoadDriver& driver,
               int n, const WorkloadOptions& workload, const std::vector<Endpoint>& admins,
               bool calibration);
  std::string Describe(const ModeRun& run) const;

  BenchOptions options_;
  ProgressLine& progress_;
  std::atomic<bool> stop_{false};
  std::string work_root_;
  std::string kept_work_dir_;
  int run_index_ = 0;
  int run_total_ = 0;
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_BENCH_RUNNER_H_
