#include "tools/bench/bench_runner.h"

#include <fmt/format.h>
#include <stdlib.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <thread>

#include "sessiond/client.h"
#include "tools/bench/http_get.h"
#include "tools/bench/json_value.h"
#include "tools/bench/metrics_scraper.h"
#include "tools/bench/redis_direct_driver.h"
#include "tools/bench/redis_memory_probe.h"
#include "tools/bench/workload_driver.h"

namespace sessiond::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kTick = 200ms;
// Visibility probes per second when a mode shares sessions between nodes.
constexpr double kLagProbesPerSecond = 50;

// The sentence a node's log gives for refusing a mode ("mode delta is not available in this
// build yet; ..."), without the log line's timestamp and level.
std::string StartFailureReason(const Status& status) {
  const std::string& message = status.message();
  const size_t at = message.find("not available in this build");
  if (at == std::string::npos) return "failed: " + message;
  size_t begin = message.rfind("mode ", at);
  if (begin == std::string::npos) {
    begin = message.rfind(": ", at);
    begin = begin == std::string::npos ? 0 : begin + 2;
  }
  const size_t end = message.find(" | ", at);
  return "unavailable: " + message.substr(begin, end == std::string::npos ? end : end - begin);
}

// Runs `work` on its own thread and calls `tick` on this one every kTick until it returns.
void RunWatched(const std::function<void()>& work, const std::function<void()>& tick) {
  std::atomic<bool> done{false};
  std::thread worker([&] {
    work();
    done = true;
  });
  while (!done) {
    tick();
    std::this_thread::sleep_for(kTick);
  }
  worker.join();
}

struct PeerTotals {
  double bytes = 0;
  double frames = 0;
  bool found = false;  // the node exports the peer counters
};

// One node's peer-link counters; nullopt when its /metrics cannot be read.
std::optional<PeerTotals> ScrapePeers(const Endpoint& admin) {
  Result<MetricSamples> samples = MetricsScraper(admin).Scrape();
  if (!samples.ok()) return std::nullopt;
  PeerTotals totals;
  if (auto bytes = samples->Sum(kMetricPeerSentBytes)) {
    totals.bytes = *bytes;
    totals.found = true;
  }
  if (auto frames = samples->Sum(kMetricPeerSentFrames)) totals.frames = *frames;
  return totals;
}

// Every node's, in order.
std::vector<std::optional<PeerTotals>> ScrapePeers(const std::vector<Endpoint>& admins) {
  std::vector<std::optional<PeerTotals>> out;
  for (const Endpoint& admin : admins) out.push_back(ScrapePeers(admin));
  return out;
}

// What node `admin` says about member `node_id` in /cluster: its state, "" when not listed,
// nullopt when /cluster cannot be read.
std::optional<std::string> MemberState(const Endpoint& admin, const std::string& node_id) {
  Result<HttpResponse> response = HttpGet(admin, "/cluster", 1000ms);
  if (!response.ok() || response->status != 200) return std::nullopt;
  Result<JsonValue> doc = JsonValue::Parse(response->body);
  if (!doc.ok()) return std::nullopt;
  const JsonValue* members = doc->Find("members");
  if (members == nullptr) return std::nullopt;
  for (const JsonValue& m : members->as_array()) {
    const JsonValue* id = m.Find("node_id");
    const JsonValue* state = m.Find("state");
    if (id != nullptr && id->as_string() == node_id) {
      return state != nullptr ? state->as_string() : std::string("listed");
    }
  }
  return std::string();
}

// Watches a cluster after a node died until it is fully redundant again.
class RedundancyWatch {
 public:
  RedundancyWatch(std::string mode, std::vector<Endpoint> survivors, std::string victim_id,
                  bool membership_known)
      : mode_(std::move(mode)),
        survivors_(std::move(survivors)),
        victim_id_(std::move(victim_id)),
        membership_known_(membership_known) {}

  // True once every survivor has declared the victim gone and (when the nodes export it) no
  // session lacks a copy.
  bool Restored() {
    for (const Endpoint& admin : survivors_) {
      std::optional<std::string> state = MemberState(admin, victim_id_);
      if (!state || *state == "alive" || *state == "suspect" || *state == "listed") return false;
    }
    bool any_metric = false;
    for (const Endpoint& admin : survivors_) {
      Result<MetricSamples> samples = MetricsScraper(admin).Scrape();
      if (!samples.ok()) return false;
      if (auto under = samples->Sum(kMetricUnderReplicated)) {
        any_metric = true;
        if (*under > 0) return false;
      }
    }
    used_metric_ = any_metric;
    return true;
  }

  std::string Note() const {
    if (!membership_known_) {
      return "not measured: /cluster on the survivors did not list the killed node before the "
             "kill, so its departure cannot be seen";
    }
    return used_metric_ ? "membership shows the node dead and sessiond_sessions_under_replicated "
                          "is 0 on every survivor"
                        : "judged by membership only (every survivor shows the node dead); the "
                          "nodes export no sessiond_sessions_under_replicated";
  }
  bool membership_known() const { return membership_known_; }

 private:
  std::string mode_;
  std::vector<Endpoint> survivors_;
  std::string victim_id_;
  bool membership_known_;
  bool used_metric_ = false;
};

// The 1-minute load average (/proc/loadavg's first field); nullopt where there is none.
std::optional<double> LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double one_minute = 0;
  if (!(in >> one_minute)) return std::nullopt;
  return one_minute;
}

std::string MakeWorkRoot(const std::string& requested) {
  if (!requested.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(requested, ec);
    return requested;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/sessiond-bench-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return "";
  return pattern;
}

}  // namespace

BenchRunner::BenchRunner(BenchOptions options, ProgressLine& progress)
    : options_(std::move(options)), progress_(progress) {}

std::string BenchRunner::Describe(const ModeRun& run) const {
  std::string text = fmt::format("[{}/{}] {} n={}", run_index_, run_total_, run.mode, run.nodes);
  if (options_.repetitions > 1) {
    text += fmt::format(" rep {}/{}", run.repetition, options_.repetitions);
  }
  return text;
}

std::vector<ModeRun> BenchRunner::Run() {
  std::vector<ModeRun> runs;
  work_root_ = MakeWorkRoot(options_.work_dir);
  bool any_failed = false;
  if (!options_.targets.empty()) {
    run_total_ = options_.repetitions;
    for (int rep = 1; rep <= options_.repetitions && !stop_; ++rep) {
      ++run_index_;
      runs.push_back(RunTarget(rep));
    }
  } else {
    run_total_ = static_cast<int>(options_.node_counts.size() * options_.modes.size()) *
                 options_.repetitions * (options_.rate_of_max > 0 ? 2 : 1);
    // Repetitions go round the modes (A B C, A B C) rather than one mode at a time (A A, B B),
    // so a spell of load on the shared machine falls on every mode alike.
    for (int nodes : options_.node_counts) {
      for (int rep = 1; rep <= options_.repetitions; ++rep) {
        for (const std::string& mode : options_.modes) {
          if (stop_) break;
          double rate = options_.workload.rate;
          std::optional<double> calibrated;
          if (options_.rate_of_max > 0) {
            ++run_index_;
            ModeRun calibration = RunOnce(mode, nodes, rep, 0, /*calibration=*/true);
            if (stop_) break;  // an interrupted calibration measures nothing worth a row
            const double served =
                calibration.load.measured.count() > 0
                    ? static_cast<double>(calibration.load.all.ok + calibration.load.all.failed()) /
                          std::chrono::duration<double>(calibration.load.measured).count()
                    : 0;
            if (!calibration.not_run.empty() || served <= 0) {
              if (calibration.not_run.empty())
                calibration.not_run = "failed: calibration served nothing";
              if (calibration.not_run.rfind("failed", 0) == 0) any_failed = true;
              progress_.Message(Describe(calibration) + ": " + calibration.not_run);
              ++run_index_;
              runs.push_back(std::move(calibration));
              continue;
            }
            calibrated = served;
            rate = served * options_.rate_of_max;
            progress_.Message(
                fmt::format("{}: closed loop served {:.0f} requests/s; open loop at "
                            "{:.0f}/s ({:.2g} of it)",
                            Describe(calibration), served, rate, options_.rate_of_max));
          }
          ++run_index_;
          runs.push_back(RunOnce(mode, nodes, rep, rate, /*calibration=*/false));
          runs.back().calibrated_max_rate = calibrated;
          const ModeRun& run = runs.back();
          if (run.not_run.rfind("failed", 0) == 0) any_failed = true;
          progress_.Message(
              Describe(run) + ": " +
              (run.not_run.empty()
                   ? fmt::format("{:.0f} ops/s, p99 {:.3f} ms, {} failed", run.load.throughput(),
                                 run.load.all.latency.ValueAtPercentile(99) / 1e6,
                                 run.load.all.failed())
                   : run.not_run));
        }
      }
    }
  }
  progress_.Finish();
  if (!work_root_.empty()) {
    if (options_.keep_work_dir || any_failed) {
      kept_work_dir_ = work_root_;
    } else if (options_.work_dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(work_root_, ec);
    }
  }
  return runs;
}

ModeRun BenchRunner::RunOnce(const std::string& mode_name, int nodes, int repetition, double rate,
                             bool calibration) {
  ModeRun run;
  run.mode = mode_name;
  run.nodes = nodes;
  run.repetition = repetition;
  run.offered_rate = rate;
  Result<BenchMode> parsed = BenchMode::Parse(mode_name);
  if (!parsed.ok()) {
    run.not_run = "failed: " + parsed.status().message();
    return run;
  }
  const BenchMode& mode = *parsed;
  if (work_root_.empty()) {
    run.not_run = "failed: cannot create a work directory under $TMPDIR or /tmp";
    return run;
  }

  ClusterOptions cluster;
  cluster.sessiond_binary = options_.sessiond_binary;
  cluster.redis_binary = options_.redis_binary;
  cluster.mode = mode.daemon_mode;
  cluster.nodes = nodes;
  cluster.replication_ack =
      mode.replication_ack.empty() ? options_.replication_ack : mode.replication_ack;
  cluster.backups = options_.backups;
  cluster.log_level = options_.log_level;
  cluster.extra_args = mode.extra_args;
  if (options_.link_delay_ms > 0 || options_.link_jitter_ms > 0 ||
      options_.link_bandwidth_bytes_per_s > 0) {
    LinkShape shape;
    shape.delay = std::chrono::microseconds(std::llround(options_.link_delay_ms * 1000));
    shape.jitter = std::chrono::microseconds(std::llround(options_.link_jitter_ms * 1000));
    shape.bandwidth_bytes_per_s = options_.link_bandwidth_bytes_per_s;
    cluster.peer_link = shape;
    cluster.redis_link = shape;
  }
  cluster.work_dir = fmt::format("{}/{}-n{}-r{}{}", work_root_, mode.name, nodes, repetition,
                                 calibration ? "-calibration" : "");
  std::error_code ec;
  std::filesystem::create_directories(cluster.work_dir, ec);

  progress_.Update(Describe(run) + (mode.direct()
                                        ? std::string(": starting redis-server")
                                        : ": starting " + std::to_string(nodes) + " nodes"));
  ClusterLauncher launcher(cluster);
  if (Status status = launcher.Start(); !status.ok()) {
    run.not_run = StartFailureReason(status);
    return run;
  }
  std::vector<Endpoint> clients, admins;
  for (const ClusterNode& node : launcher.nodes()) {
    clients.push_back(node.client);
    admins.push_back(node.admin);
  }
  WorkloadOptions workload = WorkloadFor(
      mode, mode.direct() ? nodes >= 2 : launcher.nodes().size() >= 2, rate, calibration);
  if (mode.direct()) {
    // The app servers go to the bench's redis-server (through the proxy if the link is delayed).
    RedisDirectDriver driver(launcher.redis_url(), nodes, workload);
    Measure(run, mode, &launcher, driver, nodes, workload, admins, calibration);
  } else {
    WorkloadDriver driver(clients, workload);
    Measure(run, mode, &launcher, driver, static_cast<int>(clients.size()), workload, admins,
            calibration);
  }
  progress_.Update(Describe(run) + ": stopping");
  launcher.Stop();
  return run;
}

ModeRun BenchRunner::RunTarget(int repetition) {
  ModeRun run;
  run.nodes = static_cast<int>(options_.targets.size());
  run.repetition = repetition;
  run.mode = "target";
  // Ask the first node which mode it runs, so the row says it.
  ClientOptions client_options;
  client_options.endpoints = {options_.targets.front()};
  if (auto client = Client::Connect(client_options); client.ok()) {
    if (auto stats = (*client)->Stats(); stats.ok() && !stats->mode().empty()) {
      run.mode = stats->mode();
    }
  } else {
    run.not_run = "failed: " + client.status().message();
    return run;
  }
  if (options_.failover) {
    run.not_run = "failed: --failover needs clusters the bench starts itself, not --target";
    return run;
  }
  const int n = static_cast<int>(options_.targets.size());
  BenchMode mode;
  if (Result<BenchMode> known = BenchMode::Parse(run.mode); known.ok()) {
    mode = *known;
  } else {
    mode.name = mode.daemon_mode = run.mode;
  }
  run.offered_rate = options_.workload.rate;
  WorkloadOptions workload = WorkloadFor(mode, n >= 2, options_.workload.rate, false);
  WorkloadDriver driver(options_.targets, workload);
  Measure(run, mode, nullptr, driver, n, workload, options_.target_admins, false);
  return run;
}

WorkloadOptions BenchRunner::WorkloadFor(const BenchMode& mode, bool several_nodes, double rate,
                                         bool calibration) const {
  WorkloadOptions workload = options_.workload;
  workload.rate = rate;
  workload.record_writes = !calibration && (options_.failover || options_.verify_writes);
  workload.lag_probes_per_s =
      !calibration && mode.shares_sessions() && several_nodes ? kLagProbesPerSecond : 0;
  return workload;
}

void BenchRunner::Measure(ModeRun& run, const BenchMode& mode, ClusterLauncher* launcher,
                          LoadDriver& driver, int n, const WorkloadOptions& workload,
                          const std::vector<Endpoint>& admins, bool calibration) {
  RunProgress progress;
  const std::string label = Describe(run) + (calibration ? " (closed-loop calibration)" : "");

  // Redis's memory before and after the initial sessions, while no load runs.
  const uint16_t redis_port = launcher != nullptr ? launcher->direct_redis_port() : 0;
  std::optional<RedisMemoryProbe::Snapshot> redis_before;
  if (redis_port != 0 && !calibration) {
    if (auto snapshot = RedisMemoryProbe(redis_port).Take(); snapshot.ok())
      redis_before = *snapshot;
  }

  // Populate.
  Status populated;
  RunWatched([&] { populated = driver.Populate(progress); },
             [&] {
               progress.stop = stop_.load();
               progress_.Update(fmt::format("{}: creating sessions {}/{}", label,
                                            progress.ok.load(), workload.sessions));
             });
  if (!populated.ok()) {
    run.not_run = "failed: " + populated.message();
    return;
  }
  progress.ok = 0;
  progress.failed = 0;
  if (redis_before) {
    RedisMemoryProbe probe(redis_port);
    if (auto after = probe.Take(); after.ok()) {
      if (auto memory = probe.Measure(*redis_before, *after); memory.ok()) {
        run.redis_memory = *memory;
      } else {
        progress_.Message(label + ": Redis memory not measured: " + memory.status().message());
      }
    }
  }

  // Run, watched.
  // redis-direct has no node to kill: its app servers are the bench itself.
  const bool failover =
      options_.failover && !calibration && launcher != nullptr && n >= 2 && !mode.direct();
  const int victim = n - 1;
  std::vector<Endpoint> survivors(admins.begin(), admins.end());
  if (failover && victim < static_cast<int>(survivors.size()))
    survivors.erase(survivors.begin() + victim);
  const std::string victim_id = "n" + std::to_string(victim + 1);
  const bool clustered = mode.clustered();
  bool membership_known = false;
  if (failover && clustered && !survivors.empty()) {
    std::optional<std::string> state = MemberState(survivors.front(), victim_id);
    membership_known = state && !state->empty();
  }
  std::optional<RedundancyWatch> watch;
  std::optional<Clock::time_point> killed_at;
  std::optional<Clock::time_point> restored_at;
  uint64_t failed_at_kill = 0;

  std::vector<std::optional<uint64_t>> peak_rss(n);
  // CPU seconds of each node and of redis-server at the start of the measured interval, and the
  // latest sample (a killed node keeps its last one).
  std::vector<std::optional<double>> cpu_start(n), cpu_last(n);
  std::optional<double> redis_cpu_start, redis_cpu_last;
  uint64_t ops_at_end = 0;
  std::optional<uint64_t> peak_redis_rss;
  // Peer counters at the start of the measured interval, and the victim's just before the kill
  // (a dead node's counters cannot be read afterwards).
  std::vector<std::optional<PeerTotals>> peers_before;
  std::optional<PeerTotals> victim_peers_at_kill;
  uint64_t ops_at_before = 0;
  bool measuring = false;
  Clock::time_point measure_start{};
  uint64_t last_ops = 0;
  Clock::time_point last_tick = Clock::now();
  std::string failover_status;
  Result<WorkloadResult> result = Internal("the run did not finish");

  auto tick = [&] {
    progress.stop = stop_.load();
    const auto now = Clock::now();
    const int phase = progress.phase.load();
    if (phase >= 2 && !measuring) {
      measuring = true;
      measure_start = now;
      ops_at_before = progress.ok + progress.failed;
      if (launcher != nullptr) {
        for (int i = 0; i < n; ++i) cpu_start[i] = cpu_last[i] = launcher->CpuSeconds(i);
        redis_cpu_start = redis_cpu_last = launcher->RedisCpuSeconds();
      }
      if (!admins.empty()) peers_before = ScrapePeers(admins);
    }
    if (measuring && launcher != nullptr && phase == 2) {
      for (int i = 0; i < n; ++i) {
        if (auto cpu = launcher->CpuSeconds(i)) cpu_last[i] = cpu;
      }
      if (auto cpu = launcher->RedisCpuSeconds()) redis_cpu_last = cpu;
      ops_at_end = progress.ok + progress.failed;
    }
    if (measuring && launcher != nullptr) {
      for (int i = 0; i < n; ++i) {
        if (auto rss = launcher->ResidentBytes(i))
          peak_rss[i] = std::max(peak_rss[i].value_or(0), *rss);
      }
      if (auto rss = launcher->RedisResidentBytes()) {
        peak_redis_rss = std::max(peak_redis_rss.value_or(0), *rss);
      }
    }
    if (failover && measuring && !killed_at &&
        now >= measure_start + std::chrono::duration_cast<Clock::duration>(
                                   options_.workload.duration * options_.failover_at)) {
      failed_at_kill = progress.failed;
      if (victim < static_cast<int>(admins.size()))
        victim_peers_at_kill = ScrapePeers(admins[victim]);
      if (Status killed = launcher->Kill(victim); killed.ok()) {
        killed_at = Clock::now();
        progress_.Message(label + ": killed node " + victim_id + " (kill -9)");
        if (clustered) watch.emplace(run.mode, survivors, victim_id, membership_known);
      } else {
        progress_.Message(label + ": could not kill " + victim_id + ": " + killed.message());
      }
    }
    if (watch && watch->membership_known() && killed_at && !restored_at && watch->Restored()) {
      restored_at = Clock::now();
      progress_.Message(
          fmt::format("{}: redundancy restored {:.2f} s after the kill", label,
                      std::chrono::duration<double>(*restored_at - *killed_at).count()));
    }
    const uint64_t ops = progress.ok + progress.failed;
    const double rate =
        (ops - last_ops) / std::max(1e-3, std::chrono::duration<double>(now - last_tick).count());
    last_ops = ops;
    last_tick = now;
    std::string phase_text = phase <= 1 ? "warm-up" : phase == 2 ? "measuring" : "finishing";
    if (phase == 2) {
      phase_text += fmt::format(" {:.0f}/{:.0f} s",
                                std::chrono::duration<double>(now - measure_start).count(),
                                options_.workload.duration.count() / 1000.0);
    }
    progress_.Update(fmt::format("{}: {} | {:.0f} ops/s | failed {}{}", label, phase_text, rate,
                                 progress.failed.load(),
                                 killed_at ? " | " + victim_id + " killed" : ""));
  };
  RunWatched([&] { result = driver.Run(progress); }, tick);
  if (!result.ok()) {
    run.not_run = "failed: " + result.status().message();
    return;
  }
  WorkloadResult load = std::move(*result);

  // CPU per operation over the measured interval (sampled every tick while measuring).
  if (measuring && ops_at_end > ops_at_before) {
    const double ops = static_cast<double>(ops_at_end - ops_at_before);
    double node_cpu = 0;
    bool every_node = n > 0 && !mode.direct();
    for (int i = 0; i < n && every_node; ++i) {
      if (!cpu_start[i] || !cpu_last[i])
        every_node = false;
      else
        node_cpu += *cpu_last[i] - *cpu_start[i];
    }
    if (every_node) run.node_cpu_us_per_op = node_cpu * 1e6 / ops;
    if (redis_cpu_start && redis_cpu_last) {
      run.redis_cpu_us_per_op = (*redis_cpu_last - *redis_cpu_start) * 1e6 / ops;
    }
  }

  // Peer-link traffic per operation over the measured interval.
  if (!admins.empty() && measuring) {
    const uint64_t ops = progress.ok + progress.failed - ops_at_before;
    std::vector<std::optional<PeerTotals>> after = ScrapePeers(admins);
    if (failover && killed_at && victim < static_cast<int>(after.size())) {
      after[victim] = victim_peers_at_kill;
    }
    PeerTotals sent;
    bool complete = ops > 0 && peers_before.size() == after.size();
    for (size_t i = 0; complete && i < after.size(); ++i) {
      if (!peers_before[i] || !after[i]) {
        complete = false;  // a node we cannot read: no number rather than a low one
        break;
      }
      sent.found = sent.found || (peers_before[i]->found && after[i]->found);
      sent.bytes += after[i]->bytes - peers_before[i]->bytes;
      sent.frames += after[i]->frames - peers_before[i]->frames;
    }
    if (complete && sent.found) {
      run.peer_bytes_per_op = sent.bytes / static_cast<double>(ops);
      run.peer_frames_per_op = sent.frames / static_cast<double>(ops);
    }
  }

  // After a kill, wait (bounded) for redundancy if the run ended before it came back.
  if (watch && watch->membership_known() && killed_at && !restored_at) {
    const auto give_up = *killed_at + options_.redundancy_timeout;
    while (!restored_at && Clock::now() < give_up && !stop_) {
      progress_.Update(label + ": waiting for redundancy after the kill");
      if (watch->Restored()) restored_at = Clock::now();
      std::this_thread::sleep_for(kTick);
    }
  }

  // Every acknowledged write, read back.
  std::optional<LostWriteLedger::Verdict> verdict;
  if (workload.record_writes) {
    progress_.Update(fmt::format("{}: checking {} sessions", label, load.ledger.session_count()));
    std::vector<bool> alive(n, true);
    if (launcher != nullptr) {
      for (const ClusterNode& node : launcher->nodes()) alive[node.index] = node.alive;
    }
    verdict = driver.VerifyWrites(load.ledger, alive);
    load.ledger = LostWriteLedger();
  }

  if (options_.failover && !calibration && mode.direct()) {
    // Nothing to kill: the app servers are the bench itself and Redis holds every session. The
    // writes are still read back, so the row shows what a failover-free baseline keeps.
    FailoverOutcome outcome;
    outcome.failed_requests = load.all.failed();
    if (verdict) outcome.verdict = *verdict;
    outcome.redundancy_note =
        "redis-direct has no sidecar to kill: every session lives in Redis (its own redundancy "
        "is Redis's)";
    run.failover = outcome;
  } else if (failover && killed_at) {
    FailoverOutcome outcome;
    outcome.victim = victim;
    outcome.killed_at_s = std::chrono::duration<double>(*killed_at - measure_start).count();
    outcome.failed_requests = load.all.failed();
    outcome.failed_after_kill = progress.failed - failed_at_kill;
    if (verdict) outcome.verdict = *verdict;
    if (restored_at) {
      outcome.redundancy_restored_s =
          std::chrono::duration<double>(*restored_at - *killed_at).count();
    }
    if (mode.daemon_mode == "standalone") {
      outcome.redundancy_note = "standalone keeps one copy: the killed node's sessions are gone";
    } else if (mode.daemon_mode == "redis") {
      outcome.redundancy_note = "sessions live in Redis: the daemons hold no copy to restore";
    } else if (watch) {
      outcome.redundancy_note = watch->Note();
      if (watch->membership_known() && !restored_at) {
        outcome.redundancy_note = fmt::format("not restored within {} s; ",
                                              options_.redundancy_timeout.count() / 1000.0) +
                                  outcome.redundancy_note;
      }
    }
    run.failover = outcome;
  } else {
    run.verdict = verdict;
  }
  run.node_rss_bytes = peak_rss;
  run.redis_rss_bytes = peak_redis_rss;
  run.load_average = LoadAverage();
  run.load = std::move(load);
}

}  // namespace sessiond::bench
