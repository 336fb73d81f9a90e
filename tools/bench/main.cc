// sessiond-bench: runs the same session workload against each replication mode (and Redis used
// directly) and reports them side by side. See docs/bench.md.
//
// main() only parses flags, sets up signal handling and hands over to BenchRunner and Report.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sessiond/endpoint.h"
#include "tools/bench/bench_runner.h"
#include "tools/bench/progress_line.h"
#include "tools/bench/report.h"

namespace {

using sessiond::Endpoint;
using namespace sessiond::bench;

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// The sessiond built beside this binary, else whatever PATH finds.
std::string DefaultSessiondBinary() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto sibling = self.parent_path() / "sessiond";
    if (std::filesystem::exists(sibling, ec)) return sibling.string();
  }
  return "sessiond";
}

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

// Waits for SIGINT/SIGTERM (blocked in every thread, so only this one takes them): the first asks
// the runner to stop and clean up, the second exits at once (the nodes die with us: see
// ChildProcess).
class SignalWatcher {
 public:
  explicit SignalWatcher(BenchRunner& runner) : runner_(runner) {
    thread_ = std::thread([this] { Watch(); });
  }
  ~SignalWatcher() {
    done_ = true;
    thread_.join();
  }

  static void BlockInThisThread() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

 private:
  void Watch() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int seen = 0;
    while (!done_) {
      timespec timeout{0, 200'000'000};
      if (::sigtimedwait(&set, nullptr, &timeout) < 0) continue;
      if (++seen == 1) {
        std::fprintf(stderr,
                     "\nstopping: cleaning up the nodes (press Ctrl-C again to quit "
                     "at once)\n");
        runner_.RequestStop();
      } else {
        ::_exit(130);
      }
    }
  }

  BenchRunner& runner_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  SignalWatcher::BlockInThisThread();

  BenchOptions options;
  WorkloadOptions& workload = options.workload;
  std::string modes = "standalone,delta,backup,redis,redis-nc,redis-direct";
  std::string nodes = "3";
  std::string mix = workload.mix.ToString();
  double warmup_s = 2, duration_s = 10;
  std::string targets, target_admins;
  std::string out_dir = "bench-results";
  bool quick = false;
  bool no_charts = false;
  options.sessiond_binary = DefaultSessiondBinary();

  CLI::App app{
      "sessiond-bench: the same session workload against each replication mode and "
      "Redis used directly, side by side. Starts its own local clusters (or uses "
      "--target), prints a table, writes JSON, CSV and charts."};
  app.add_option("--modes", modes,
                 "Comma-separated modes to compare: " + BenchMode::KnownNames() +
                     " (redis-nc: redis with --redis-near-cache; delta-sync etc.: with that "
                     "--replication-ack; redis-direct: the bench talks to Redis itself)")
      ->capture_default_str();
  app.add_option("--nodes", nodes, "Cluster size; a comma-separated list sweeps it (2,3,4,6)")
      ->capture_default_str();
  app.add_option("--sessions", workload.sessions, "Sessions created before the run")
      ->capture_default_str()
      ->check(CLI::Range(1, 100'000'000));
  app.add_option("--attrs", workload.attributes, "Attributes per session")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--value-bytes", workload.value_bytes, "Bytes per attribute value (at least 18)")
      ->capture_default_str();
  app.add_option("--mix", mix, "read:write:create weights, e.g. 80:15:5")->capture_default_str();
  app.add_option("--sticky", workload.sticky,
                 "Share of requests sent to the session's home node (the rest go to any node)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  bool no_touch = false;
  app.add_flag("--no-touch", no_touch,
               "Reads do not move the session's access time (a plain get; Redis: HGETALL alone)");
  app.add_option("--connections", workload.connections, "Client connections per node")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000));
  app.add_option("--threads", workload.threads, "Load-generator threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--rate", workload.rate,
                 "Requests per second in all (open loop, latency from the intended send time); "
                 "0 = closed loop")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--rate-of-max", options.rate_of_max,
                 "Open loop at this fraction of the maximum: each row first runs closed loop "
                 "(not reported), then open loop at this fraction of the requests/s it served "
                 "(0.5 = half of maximum load); overrides --rate")
      ->check(CLI::Range(0.0, 10.0));
  app.add_option("--warmup-s", warmup_s, "Seconds of load before measuring")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--duration-s", duration_s, "Seconds measured")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--repetitions", options.repetitions, "Runs of each mode and size")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--link-delay-ms", options.link_delay_ms,
                 "One-way delay added to every peer link and the Redis link by a delaying proxy "
                 "(0.5 is like one datacenter)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--link-jitter-ms", options.link_jitter_ms, "Jitter (+/- uniform) on those links")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--link-bandwidth", options.link_bandwidth_bytes_per_s,
                 "Bandwidth cap of each link direction in bytes/s (0 = none)")
      ->capture_default_str();
  app.add_option("--replication-ack", options.replication_ack,
                 "async or sync, passed to delta and backup nodes (default: the daemon's)")
      ->check(CLI::IsMember({"async", "sync"}));
  app.add_option("--backups", options.backups, "Backups per session in backup mode");
  app.add_flag("--failover", options.failover,
               "Kill -9 the last node mid-run and report what was lost and how long until "
               "redundancy was restored");
  app.add_option("--failover-at", options.failover_at,
                 "When to kill, as a fraction of the measured interval")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_flag("--verify", options.verify_writes,
               "Check every acknowledged write at the end even without --failover");
  app.add_option("--target", targets,
                 "Comma-separated client endpoints (HOST:PORT) of running nodes to measure "
                 "instead of starting clusters");
  app.add_option("--target-admin", target_admins,
                 "Their admin endpoints, same order, for /metrics (optional)");
  app.add_option("--out-dir", out_dir, "Where results.json, results.csv and charts/ go")
      ->capture_default_str();
  app.add_flag("--quick", quick,
               "The README comparison: standalone, delta, backup, redis, redis-nc and "
               "redis-direct on 3 nodes, a short run (under 2 minutes)");
  app.add_option("--sessiond", options.sessiond_binary, "The sessiond binary")
      ->capture_default_str();
  app.add_option("--redis-server", options.redis_binary, "The redis-server binary")
      ->capture_default_str();
  app.add_option("--log-level", options.log_level, "The nodes' --log-level")->capture_default_str();
  app.add_option("--work-dir", options.work_dir,
                 "Where nodes keep port files and logs (default: a temporary directory, removed "
                 "afterwards unless a run failed)");
  app.add_flag("--keep-work-dir", options.keep_work_dir, "Keep the nodes' logs afterwards");
  app.add_flag("--no-charts", no_charts, "Do not run gnuplot");
  app.add_option("--seed", workload.seed, "Seed of the workload's random choices")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (quick) {
    // Explicit flags win over the preset.
    if (app.count("--modes") == 0) modes = "standalone,delta,backup,redis,redis-nc,redis-direct";
    if (app.count("--nodes") == 0) nodes = "3";
    if (app.count("--sessions") == 0) workload.sessions = 2000;
    if (app.count("--warmup-s") == 0) warmup_s = 2;
    if (app.count("--duration-s") == 0) duration_s = 8;
    if (app.count("--repetitions") == 0) options.repetitions = 1;
  }

  options.modes = SplitList(modes);
  for (const std::string& mode : options.modes) {
    if (auto known = BenchMode::Parse(mode); !known.ok()) {
      std::cerr << "--modes: " << known.status().message() << "\n";
      return 2;
    }
  }
  options.node_counts.clear();
  for (const std::string& n : SplitList(nodes)) {
    int count = 0;
    try {
      count = std::stoi(n);
    } catch (...) {
      count = 0;
    }
    if (count < 1 || count > 64) {
      std::cerr << "--nodes takes cluster sizes from 1 to 64, e.g. 3 or 2,3,4,6; got \"" << n
                << "\"\n";
      return 2;
    }
    options.node_counts.push_back(count);
  }
  auto parsed_mix = OpMix::Parse(mix);
  if (!parsed_mix.ok()) {
    std::cerr << parsed_mix.status().message() << "\n";
    return 2;
  }
  workload.mix = *parsed_mix;
  workload.touch_on_read = !no_touch;
  workload.warmup = std::chrono::milliseconds(std::llround(warmup_s * 1000));
  workload.duration = std::chrono::milliseconds(std::llround(duration_s * 1000));
  for (const auto& [list, into] :
       {std::pair{&targets, &options.targets}, std::pair{&target_admins, &options.target_admins}}) {
    for (const std::string& text : SplitList(*list)) {
      auto endpoint = Endpoint::Parse(text);
      if (!endpoint.ok()) {
        std::cerr << endpoint.status().message() << "\n";
        return 2;
      }
      into->push_back(*endpoint);
    }
  }
  if (!options.target_admins.empty() && options.target_admins.size() != options.targets.size()) {
    std::cerr << "--target-admin must list one admin endpoint per --target endpoint\n";
    return 2;
  }

  ReportContext context;
  context.workload = workload;
  context.repetitions = options.repetitions;
  context.link_delay_ms = options.link_delay_ms;
  context.link_jitter_ms = options.link_jitter_ms;
  context.link_bandwidth_bytes_per_s = options.link_bandwidth_bytes_per_s;
  context.replication_ack = options.replication_ack;
  context.rate_of_max = options.rate_of_max;
  context.failover = options.failover;
  context.started_at = UtcNow();
  for (int i = 0; i < argc; ++i) context.command_line += (i ? " " : "") + std::string(argv[i]);

  ProgressLine progress;
  BenchRunner runner(options, progress);
  std::vector<ModeRun> runs;
  {
    SignalWatcher signals(runner);
    runs = runner.Run();
  }
  progress.Finish();

  Report report(context, std::move(runs));
  std::cout << report.Table() << std::flush;
  std::string note;
  auto written = report.WriteFiles(out_dir, !no_charts, &note);
  if (!written.ok()) {
    std::cerr << "could not write the results: " << written.status().message() << "\n";
    return 1;
  }
  std::cerr << "results: " << out_dir << "/results.json, results.csv, results.txt"
            << (no_charts ? "" : ", charts/") << "\n";
  if (!note.empty()) std::cerr << "note: " << note << "\n";
  if (!runner.kept_work_dir().empty()) {
    std::cerr << "node logs kept in " << runner.kept_work_dir() << "\n";
  }
  if (runner.stop_requested()) return 130;
  for (const ModeSummary& s : report.summaries()) {
    if (s.runs == 0 && s.not_run.rfind("failed", 0) == 0) return 1;
  }
  return 0;
}
