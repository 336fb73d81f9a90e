// Report: the bench's results, combined over repetitions and written out as a table for the
// terminal, JSON and CSV for machines, and gnuplot charts (PNG and SVG) for people.
//
// Repetitions of one (mode, cluster size) are combined by merging their latency histograms and
// adding their counts and measured time, so throughput is the mean over repetitions and the
// percentiles are those of every request; the JSON keeps each repetition as well.
//
// Files written by WriteFiles(dir): results.json, results.csv, results.txt (the table), and
// under charts/: *.dat, charts.gp, and throughput, latency, timeline (and with several cluster
// sizes, sweep_throughput and sweep_p99) as .png and .svg.
//
// Threading: immutable once built; any thread.
#ifndef SESSIOND_TOOLS_BENCH_REPORT_H_
#define SESSIOND_TOOLS_BENCH_REPORT_H_

#include <optional>
#include <string>
#include <vector>

#include "sessiond/status.h"
#include "tools/bench/mode_run.h"
#include "tools/bench/workload_options.h"

namespace sessiond::bench {

// What the whole bench run was, for the report's header.
struct ReportContext {
  WorkloadOptions workload;
  int repetitions = 1;
  double link_delay_ms = 0;
  double link_jitter_ms = 0;
  uint64_t link_bandwidth_bytes_per_s = 0;
  std::string replication_ack;  // "" = the daemon's default
  double rate_of_max = 0;       // open loop at this fraction of a calibration run's rate
  bool failover = false;
  std::string started_at;  // ISO 8601, UTC
  std::string command_line;
};

// The repetitions of one (mode, nodes), combined.
struct ModeSummary {
  std::string mode;
  int nodes = 0;
  std::string not_run;  // set when no repetition ran: the first one's reason
  int runs = 0;         // repetitions that ran
  WorkloadResult load;  // merged: counts, histograms, measured time (no timeline, no ledger)
  double throughput_min = 0;
  double throughput_max = 0;
  std::optional<double> peer_bytes_per_op;  // mean over repetitions that had it
  std::optional<double> peer_frames_per_op;
  std::optional<double> rss_mb_per_node;  // mean over nodes and repetitions
  std::optional<double> redis_rss_mb;
  std::optional<double> node_cpu_us_per_op;  // mean over repetitions that had it
  std::optional<double> redis_cpu_us_per_op;
  std::optional<LostWriteLedger::Verdict> verdict;  // summed
  std::optional<FailoverOutcome> failover;          // summed; redundancy time is the worst
  std::vector<size_t> repetitions;                  // indices into Report::runs(), ran or not
  std::optional<RedisMemory> redis_memory;          // the first repetition's that had it
  double offered_rate = 0;                          // mean over repetitions (0 = closed loop)
  std::optional<double> calibrated_max_rate;        // mean over repetitions that had it
  std::optional<double> load_average;               // mean of the runs' 1-minute load averages
  // Throughput as a share of the standalone (resp. redis-direct) row of the same cluster size in
  // this run: what replication (resp. the sidecar) costs, measured side by side.
  std::optional<double> vs_standalone;
  std::optional<double> vs_redis_direct;
};

class Report {
 public:
  Report(ReportContext context, std::vector<ModeRun> runs);

  // The side-by-side table, one row per (mode, nodes), in the order first run.
  std::string Table() const;
  std::string Json() const;
  // One line per repetition and one combined line ("all") per (mode, nodes).
  std::string Csv() const;

  // Writes every file (see the header comment) into `dir` (created if missing). Charts need
  // `gnuplot` in PATH; without it the data and script are still written and the returned note
  // says so. Returns the paths written, or INTERNAL when a file cannot be written.
  Result<std::vector<std::string>> WriteFiles(const std::string& dir, bool charts,
                                              std::string* note) const;

  const std::vector<ModeSummary>& summaries() const { return summaries_; }
  const std::vector<ModeRun>& runs() const { return runs_; }

 private:
  Status WriteCharts(const std::string& dir, std::vector<std::string>& written,
                     std::string* note) const;

  ReportContext context_;
  std::vector<ModeRun> runs_;
  std::vector<ModeSummary> summaries_;
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_REPORT_H_
