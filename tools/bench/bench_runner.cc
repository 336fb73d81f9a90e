#include "tools/bench/bench_runner.h"

#include <fmt/format.h>
#include <stdlib.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>

#include "sessiond/client.h"
#include "tools/bench/http_get.h"
#include "tools/bench/json_value.h"
#include "tools/bench/metrics_scraper.h"
#include "tools/bench/redis_direct_driver.h"
#include "tools/bench/workload_driver.h"

namespace sessiond::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kTick = 200ms;
// Visibility probes per second when a mode shares sessions between nodes.
constexpr double kLagProbesPerSecond = 20;

bool KnownMode(const std::string& mode) {
  return mode == "standalone" || mode == "delta" || mode == "backup" || mode == "redis" ||
         mode == "redis-direct";
}

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
  bool found = false;
};

// Sums the peer-link counters of the nodes whose scrape succeeds; `ok[i]` says which did.
PeerTotals ScrapePeers(const std::vector<Endpoint>& admins, std::vector<bool>* ok) {
  PeerTotals totals;
  ok->assign(admins.size(), false);
  for (size_t i = 0; i < admins.size(); ++i) {
    Result<MetricSamples> samples = MetricsScraper(admins[i]).Scrape();
    if (!samples.ok()) continue;
    (*ok)[i] = true;
    if (auto bytes = samples->Sum(kMetricPeerSentBytes)) {
      totals.bytes += *bytes;
      totals.found = true;
    }
    if (auto frames = samples->Sum(kMetricPeerSentFrames)) totals.frames += *frames;
  }
  return totals;
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
                 options_.repetitions;
    for (int nodes : options_.node_counts) {
      for (const std::string& mode : options_.modes) {
        for (int rep = 1; rep <= options_.repetitions; ++rep) {
          if (stop_) break;
          ++run_index_;
          runs.push_back(RunOnce(mode, nodes, rep));
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

ModeRun BenchRunner::RunOnce(const std::string& mode, int nodes, int repetition) {
  ModeRun run;
  run.mode = mode;
  run.nodes = nodes;
  run.repetition = repetition;
  if (!KnownMode(mode)) {
    run.not_run = "failed: unknown mode \"" + mode +
                  "\"; use standalone, delta, backup, redis or redis-direct";
    return run;
  }
  if (work_root_.empty()) {
    run.not_run = "failed: cannot create a work directory under $TMPDIR or /tmp";
    return run;
  }

  ClusterOptions cluster;
  cluster.sessiond_binary = options_.sessiond_binary;
  cluster.redis_binary = options_.redis_binary;
  cluster.mode = mode;
  cluster.nodes = nodes;
  cluster.replication_ack = options_.replication_ack;
  cluster.backups = options_.backups;
  cluster.log_level = options_.log_level;
  if (options_.link_delay_ms > 0 || options_.link_jitter_ms > 0 ||
      options_.link_bandwidth_bytes_per_s > 0) {
    LinkShape shape;
    shape.delay = std::chrono::microseconds(std::llround(options_.link_delay_ms * 1000));
    shape.jitter = std::chrono::microseconds(std::llround(options_.link_jitter_ms * 1000));
    shape.bandwidth_bytes_per_s = options_.link_bandwidth_bytes_per_s;
    cluster.peer_link = shape;
    cluster.redis_link = shape;
  }
  cluster.work_dir = fmt::format("{}/{}-n{}-r{}", work_root_, mode, nodes, repetition);
  std::error_code ec;
  std::filesystem::create_directories(cluster.work_dir, ec);

  progress_.Update(Describe(run) + (mode == "redis-direct"
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
  WorkloadOptions workload = WorkloadFor(run, launcher.nodes().size() >= 2);
  if (mode == "redis-direct") {
    // The app servers go to the bench's redis-server (through the proxy if the link is delayed).
    RedisDirectDriver driver(launcher.redis_url(), nodes, workload);
    Measure(run, &launcher, driver, nodes, workload, admins);
  } else {
    WorkloadDriver driver(clients, workload);
    Measure(run, &launcher, driver, static_cast<int>(clients.size()), workload, admins);
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
  WorkloadOptions workload = WorkloadFor(run, n >= 2);
  WorkloadDriver driver(options_.targets, workload);
  Measure(run, nullptr, driver, n, workload, options_.target_admins);
  return run;
}

WorkloadOptions BenchRunner::WorkloadFor(const ModeRun& run, bool several_nodes) const {
  WorkloadOptions workload = options_.workload;
  workload.record_writes = options_.failover || options_.verify_writes;
  const bool shares_sessions = run.mode != "standalone";
  workload.lag_probes_per_s = shares_sessions && several_nodes ? kLagProbesPerSecond : 0;
  return workload;
}

void BenchRunner::Measure(ModeRun& run, ClusterLauncher* launcher, LoadDriver& driver, int n,
                          const WorkloadOptions& workload, const std::vector<Endpoint>& admins) {
  RunProgress progress;
  const std::string label = Describe(run);

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

  // Run, watched.
  // redis-direct has no node to kill: its app servers are the bench itself.
  const bool failover =
      options_.failover && launcher != nullptr && n >= 2 && run.mode != "redis-direct";
  const int victim = n - 1;
  std::vector<Endpoint> survivors(admins.begin(), admins.end());
  if (failover && victim < static_cast<int>(survivors.size()))
    survivors.erase(survivors.begin() + victim);
  const std::string victim_id = "n" + std::to_string(victim + 1);
  const bool clustered = run.mode == "delta" || run.mode == "backup";
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
  std::optional<uint64_t> peak_redis_rss;
  PeerTotals peers_before;
  std::vector<bool> scraped_before;
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
      if (!admins.empty()) peers_before = ScrapePeers(admins, &scraped_before);
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

  // Peer-link traffic per operation over the measured interval.
  if (!admins.empty() && measuring) {
    std::vector<bool> scraped_after;
    const uint64_t ops = progress.ok + progress.failed - ops_at_before;
    PeerTotals after = ScrapePeers(admins, &scraped_after);
    if (peers_before.found && after.found && ops > 0 && scraped_after == scraped_before) {
      run.peer_bytes_per_op = (after.bytes - peers_before.bytes) / static_cast<double>(ops);
      run.peer_frames_per_op = (after.frames - peers_before.frames) / static_cast<double>(ops);
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

  if (options_.failover && run.mode == "redis-direct") {
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
    if (run.mode == "standalone") {
      outcome.redundancy_note = "standalone keeps one copy: the killed node's sessions are gone";
    } else if (run.mode == "redis") {
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
  run.load = std::move(load);
}

}  // namespace sessiond::bench
