// A measurement, not a test: the state transfer of many sessions of about 1 KiB (8 attributes
// of 120 bytes) between two nodes, each on its own event-loop thread (as two daemons would be),
// over loopback. Disabled by default; run it on its own (one line):
//
//   build/bin/unit_tests --gtest_also_run_disabled_tests
//       --gtest_filter='DeltaTransferBenchmark.*'
//
// SESSIOND_BENCH_SESSIONS sets how many sessions (default 1,000,000), SESSIOND_BENCH_WINDOW the
// transfer window (default DeltaOptions::transfer_window). It sets malloc up as the daemon does
// (TuneMalloc) unless SESSIOND_BENCH_DEFAULT_MALLOC=1. It prints the seconds from
// the joining node's start to its readiness, the session payload rate, and the CPU time of both
// event loops; it asserts only that every session arrived.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "replication/clock.h"
#include "replication/cluster/cluster.h"
#include "replication/delta/delta_manager.h"
#include "replication/session_id.h"
#include "sessiond/asio.h"
#include "sessiond/malloc_tuning.h"

namespace sessiond {
namespace {

using namespace std::chrono_literals;

// One node on its own io_context thread. Every call into it is posted there.
class BenchNode {
 public:
  // Runs fn on the node's loop and returns its result.
  template <typename Fn>
  auto OnLoop(Fn fn) -> decltype(fn()) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    asio::post(io_, [&task] { task(); });
    return result.get();
  }

  BenchNode(const std::string& id, std::vector<Endpoint> seeds, DeltaOptions delta)
      : work_(asio::make_work_guard(io_)) {
    ClusterOptions options;
    options.network.self = NodeIdentity{"bench", id, 0};
    options.network.listen = Endpoint{Endpoint::Kind::kTcp, "127.0.0.1", 0, ""};
    options.network.seeds = std::move(seeds);
    options.network.reconnect_min = 10ms;
    options.network.reconnect_max = 100ms;
    options.clock = &clock_;
    cluster_ = std::make_unique<Cluster>(io_.get_executor(), std::move(options));
    ManagerOptions manager;
    manager.node_id = id;
    manager.clock = &clock_;
    manager.ids = &ids_;
    manager_ = std::make_unique<DeltaManager>(io_.get_executor(), manager, cluster_.get(), delta);
    thread_ = std::thread([this] { io_.run(); });
    OnLoop([this] {
      EXPECT_TRUE(cluster_->Start().ok());
      asio::co_spawn(io_, manager_->Start(),
                     [](std::exception_ptr, Status s) { EXPECT_TRUE(s.ok()) << s.ToString(); });
      return 0;
    });
  }

  ~BenchNode() {
    OnLoop([this] {
      manager_.reset();
      cluster_->Stop();
      return 0;
    });
    work_.reset();
    io_.stop();
    thread_.join();
  }

  // Creates `count` sessions of 8 attributes of 120 bytes, on the loop.
  void Fill(int count) {
    std::promise<void> done;
    asio::co_spawn(
        io_,
        [](DeltaManager* manager, int count) -> asio::awaitable<void> {
          for (int n = 0; n < count; ++n) {
            v1::CreateRequest request;
            request.set_max_idle_s(3600);
            for (int i = 0; i < 8; ++i) {
              std::string value = std::to_string(n) + "/" + std::to_string(i) + ":";
              value.resize(120, static_cast<char>('a' + (n * 7 + i) % 26));
              (*request.mutable_attributes())["attr" + std::to_string(i)] = std::move(value);
            }
            Result<v1::Session> created = co_await manager->Create(std::move(request));
            if (!created.ok()) ADD_FAILURE() << created.status().ToString();
          }
        }(manager_.get(), count),
        [&done](std::exception_ptr) { done.set_value(); });
    done.get_future().get();
  }

  // CPU seconds the node's event-loop thread has used: what the transfer costs the loop, whatever
  // else the machine runs meanwhile.
  double LoopCpuSeconds() {
    return OnLoop([] {
      timespec ts{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
      return ts.tv_sec + ts.tv_nsec / 1e9;
    });
  }

  // The kernel's id of the node's event-loop thread.
  pid_t LoopThreadId() {
    return OnLoop([] { return gettid(); });
  }

  Endpoint endpoint() {
    return OnLoop([this] { return cluster_->listen_endpoint(); });
  }
  DeltaManager& manager() { return *manager_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  SystemClock clock_;
  RandomIdGenerator ids_;
  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<DeltaManager> manager_;
  std::thread thread_;
};

// CPU seconds of the whole process (both nodes' loops and workers), user and system.
double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec +
         usage.ru_stime.tv_usec / 1e6;
}

// CPU seconds of one thread, in user space and in the kernel (for the joining node's workers,
// the kernel's share is mostly page faults: the price of fresh memory, which on a VM varies with
// the host).
struct ThreadCpu {
  double user = 0;
  double system = 0;
};

// CPU seconds of every thread of the process, by thread id, from /proc: the workers are the
// manager's own, so this is how the benchmark tells what each one cost.
std::map<pid_t, ThreadCpu> ThreadCpuSeconds() {
  std::map<pid_t, ThreadCpu> cpu;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream in(entry.path() / "stat");
    std::string line;
    std::getline(in, line);
    // Fields after the command name (which may hold spaces), from the 3rd: utime is the 14th
    // field and stime the 15th.
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(line.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i == 14) utime = std::stod(field);
      if (i == 15) stime = std::stod(field);
    }
    cpu[static_cast<pid_t>(std::stol(entry.path().filename().string()))] = {utime / ticks,
                                                                            stime / ticks};
  }
  return cpu;
}

// Page faults of the process so far: each is a fresh page the kernel zeroed.
long PageFaults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

TEST(DeltaTransferBenchmark, DISABLED_StateTransferOfOneMillionSessions) {
  const char* env = std::getenv("SESSIOND_BENCH_SESSIONS");
  const int sessions = env != nullptr ? std::atoi(env) : 1'000'000;
  // As sessiond's main() does, before the nodes' threads start.
  const char* default_malloc = std::getenv("SESSIOND_BENCH_DEFAULT_MALLOC");
  if (default_malloc == nullptr || std::string(default_malloc) != "1") {
    EXPECT_FALSE(TuneMalloc().refused);
  } else {
    std::printf("malloc left at glibc's defaults\n");
  }
  constexpr double kPayloadPerSession = 8 * (5 + 120);  // attribute names and values

  DeltaOptions delta;
  delta.anti_entropy_interval = 0ms;
  if (const char* window = std::getenv("SESSIOND_BENCH_WINDOW")) {
    delta.transfer_window = static_cast<uint32_t>(std::atoi(window));
  }
  BenchNode a("a", {}, delta);
  const auto fill_start = std::chrono::steady_clock::now();
  a.Fill(sessions);
  const double fill_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - fill_start).count();
  std::printf("filled node a with %d sessions in %.2f s\n", sessions, fill_s);

  delta.join_cluster = true;
  const double a_cpu_before = a.LoopCpuSeconds();
  const pid_t a_loop = a.LoopThreadId();
  const std::map<pid_t, ThreadCpu> threads_before = ThreadCpuSeconds();
  const double process_cpu_before = ProcessCpuSeconds();
  const long faults_before = PageFaults();
  const auto start = std::chrono::steady_clock::now();
  BenchNode b("b", {a.endpoint()}, delta);
  bool ready = false;
  while (!ready) {
    std::this_thread::sleep_for(5ms);  // polling the result, not waiting for it to happen
    ready = b.OnLoop([&] { return b.manager().Ready().ready; });
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double process_cpu = ProcessCpuSeconds() - process_cpu_before;
  const long faults = PageFaults() - faults_before;
  const double a_cpu = a.LoopCpuSeconds() - a_cpu_before;
  const double b_cpu = b.LoopCpuSeconds();
  const pid_t b_loop = b.LoopThreadId();
  const std::map<pid_t, ThreadCpu> threads_after = ThreadCpuSeconds();
  const v1::NodeStats stats = b.OnLoop([&] { return b.manager().Stats(); });
  EXPECT_EQ(stats.sessions(), static_cast<uint64_t>(sessions));
  const double payload_mb = sessions * kPayloadPerSession / 1e6;
  std::printf(
      "state transfer: %d sessions, %.0f MB of session payload (%.0f MB serialized) in %.2f s: "
      "%.0f MB/s of payload\n",
      sessions, payload_mb, stats.counters().at("state_transfer_bytes_received") / 1e6, seconds,
      payload_mb / seconds);
  std::printf("event-loop CPU during the transfer: sender %.2f s, receiver %.2f s\n", a_cpu, b_cpu);
  // The loops and the two workers share the machine's cores: with two cores, the wall clock
  // cannot be under half of this.
  std::printf("process CPU during the transfer (both loops and workers): %.2f s\n", process_cpu);
  // Every thread that used CPU meanwhile. Node a's worker is the thread besides the main one and
  // a's loop that ran before the transfer; node b's is the new one besides b's loop.
  std::string per_thread;
  for (const auto& [tid, after] : threads_after) {
    auto before = threads_before.find(tid);
    const ThreadCpu earlier = before == threads_before.end() ? ThreadCpu{} : before->second;
    const double user = after.user - earlier.user;
    const double system = after.system - earlier.system;
    if (user + system < 0.005) continue;
    const char* name = tid == a_loop   ? "sender loop"
                       : tid == b_loop ? "receiver loop"
                       : tid == getpid()
                           ? "main"
                           : (before != threads_before.end() ? "sender worker" : "receiver worker");
    char part[96];
    std::snprintf(part, sizeof part, "%s%s %.2f s (%.2f user, %.2f system)",
                  per_thread.empty() ? "" : ", ", name, user + system, user, system);
    per_thread += part;
  }
  std::printf("CPU by thread (from /proc, 10 ms ticks): %s\n", per_thread.c_str());
  std::printf("page faults during the transfer: %ld (%.0f MB of 4 KiB pages)\n", faults,
              faults * 4096 / 1e6);
}

}  // namespace
}  // namespace sessiond
