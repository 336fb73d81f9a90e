// A measurement, not a test: what one peer frame costs in CPU and heap allocations, between two
// Clusters (PeerNetwork, PeerLink, the frame codec, protobuf) on loopback, each on its own
// event-loop thread as two daemons would be. Disabled by default; run it on its own (one line):
//
//   build/bin/unit_tests --gtest_also_run_disabled_tests
//       --gtest_filter='PeerFrameBenchmark.*'
//
// Two workloads of small Probe messages (SESSIOND_BENCH_PAYLOAD bytes of payload, default 200:
// the size of a backup change batch or a delta batch of one update):
//   - PingPong: a sends one message, b answers it, a sends the next on the answer: every frame
//     is a write of its own and a wakeup of the other loop, as at low load;
//   - Streamed: a sends bursts of up to 64 messages per loop turn, b only counts: the writer
//     gathers what is queued, the reader decodes many frames per read, as at high load.
// SESSIOND_BENCH_MESSAGES sets how many messages (default 200,000 ping-pong, 1,000,000 streamed).
// Each prints, per message, the user and system CPU of both loops (getrusage RUSAGE_THREAD on each
// loop thread) and the heap allocations they made (operator new, counted per thread); it asserts
// only that every message arrived. `strace -c -f` around it counts the system calls.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "replication/clock.h"
#include "replication/cluster/cluster.h"
#include "sessiond/asio.h"

// Heap allocations per thread: a replacement of the global operator new (the other forms of new
// in libstdc++ call this one), which every test of this binary goes through; one thread-local
// increment costs next to nothing. Sanitizer builds keep their own operator new.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define SESSIOND_NO_NEW_COUNTER 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SESSIOND_NO_NEW_COUNTER 1
#endif

namespace {
thread_local uint64_t allocations_on_this_thread = 0;
}  // namespace

#ifndef SESSIOND_NO_NEW_COUNTER
void* operator new(std::size_t size) {
  ++allocations_on_this_thread;
  if (size == 0) size = 1;
  for (;;) {
    if (void* p = std::malloc(size)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace sessiond {
namespace {

using namespace std::chrono_literals;
using peer::v1::PeerEnvelope;

struct LoopUsage {
  double user_s = 0;
  double system_s = 0;
  uint64_t allocations = 0;
  LoopUsage operator-(const LoopUsage& o) const {
    return {user_s - o.user_s, system_s - o.system_s, allocations - o.allocations};
  }
};

// One cluster node on its own io_context thread. Every call into it is posted there.
class LoopNode {
 public:
  template <typename Fn>
  auto OnLoop(Fn fn) -> decltype(fn()) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    asio::post(io_, [&task] { task(); });
    return result.get();
  }

  LoopNode(const std::string& id, std::vector<Endpoint> seeds) : work_(asio::make_work_guard(io_)) {
    ClusterOptions options;
    options.network.self = NodeIdentity{"bench", id, 0};
    options.network.listen = Endpoint{Endpoint::Kind::kTcp, "127.0.0.1", 0, ""};
    options.network.seeds = std::move(seeds);
    options.network.reconnect_min = 10ms;
    options.network.reconnect_max = 100ms;
    options.heartbeat_interval = 0ms;  // no heartbeats: only the measured frames flow
    options.clock = &clock_;
    cluster_ = std::make_unique<Cluster>(io_.get_executor(), std::move(options));
    thread_ = std::thread([this] { io_.run(); });
    OnLoop([this] {
      EXPECT_TRUE(cluster_->Start().ok());
      return 0;
    });
  }

  ~LoopNode() {
    OnLoop([this] {
      cluster_->Stop();
      return 0;
    });
    work_.reset();
    io_.stop();
    thread_.join();
  }

  LoopUsage Usage() {
    return OnLoop([] {
      rusage usage{};
      getrusage(RUSAGE_THREAD, &usage);
      return LoopUsage{usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6,
                       usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6,
                       allocations_on_this_thread};
    });
  }

  bool LinkedTo(const std::string& id) {
    return OnLoop([&] {
      const auto status = cluster_->LinkStatus(id);
      return status.has_value() && status->linked;
    });
  }

  LinkCounters CountersOf(const std::string& id) {
    return OnLoop([&] { return cluster_->LinkStatus(id).value_or(PeerLinkStatus{}).counters; });
  }

  Endpoint endpoint() {
    return OnLoop([this] { return cluster_->listen_endpoint(); });
  }
  Cluster& cluster() { return *cluster_; }
  asio::io_context& io() { return io_; }

 private:
  // As the daemon's: one thread runs the loop.
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  SystemClock clock_;
  std::unique_ptr<Cluster> cluster_;
  std::thread thread_;
};

int EnvOr(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::atoi(value) : fallback;
}

PeerEnvelope ProbeOf(const std::string& payload) {
  PeerEnvelope envelope;
  envelope.mutable_probe()->set_payload(payload);
  return envelope;
}

class PeerFrameBenchmark : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = std::make_unique<LoopNode>("a", std::vector<Endpoint>{});
    b_ = std::make_unique<LoopNode>("b", std::vector<Endpoint>{a_->endpoint()});
    while (!a_->LinkedTo("b") || !b_->LinkedTo("a")) {
      std::this_thread::sleep_for(5ms);  // polling the result, not waiting for it to happen
    }
    payload_.assign(static_cast<size_t>(EnvOr("SESSIOND_BENCH_PAYLOAD", 200)), 'p');
  }

  void TearDown() override {
    b_.reset();
    a_.reset();
  }

  // Prints the cost of `frames` frames from the usage of both loops between two snapshots.
  void Report(const char* name, int frames, const LoopUsage& a, const LoopUsage& b, double wall_s,
              const LinkCounters& a_out, const LinkCounters& b_out) {
    const double cpu_us = (a.user_s + a.system_s + b.user_s + b.system_s) * 1e6 / frames;
    std::printf(
        "%s: %d frames of %zu B payload in %.2f s; per frame: %.2f us CPU (user %.2f, system "
        "%.2f; sender loop %.2f, receiver loop %.2f), %.2f allocations (sender %.2f, receiver "
        "%.2f)\n",
        name, frames, payload_.size(), wall_s, cpu_us, (a.user_s + b.user_s) * 1e6 / frames,
        (a.system_s + b.system_s) * 1e6 / frames, (a.user_s + a.system_s) * 1e6 / frames,
        (b.user_s + b.system_s) * 1e6 / frames,
        static_cast<double>(a.allocations + b.allocations) / frames,
        static_cast<double>(a.allocations) / frames, static_cast<double>(b.allocations) / frames);
    std::printf("%s: frames out a->b %llu, b->a %llu; bytes out a->b %llu, b->a %llu\n", name,
                static_cast<unsigned long long>(a_out.frames_out),
                static_cast<unsigned long long>(b_out.frames_out),
                static_cast<unsigned long long>(a_out.bytes_out),
                static_cast<unsigned long long>(b_out.bytes_out));
  }

  std::unique_ptr<LoopNode> a_;
  std::unique_ptr<LoopNode> b_;
  std::string payload_;
};

TEST_F(PeerFrameBenchmark, DISABLED_PingPong) {
  // a sends the next message when b's answer arrives; `round_trips` of them, two frames each.
  const int round_trips = EnvOr("SESSIOND_BENCH_MESSAGES", 200'000) / 2;
  std::promise<void> done;
  int answered = 0;
  b_->OnLoop([&] {
    return b_->cluster()
        .Subscribe(PeerEnvelope::kProbe,
                   [this](const PeerIdentity& from, const PeerEnvelope& envelope) {
                     (void)b_->cluster().Send(from.node_id, ProbeOf(envelope.probe().payload()));
                   })
        .ok();
  });
  a_->OnLoop([&] {
    return a_->cluster()
        .Subscribe(PeerEnvelope::kProbe,
                   [&](const PeerIdentity& from, const PeerEnvelope&) {
                     if (++answered == round_trips) {
                       done.set_value();
                       return;
                     }
                     (void)a_->cluster().Send(from.node_id, ProbeOf(payload_));
                   })
        .ok();
  });
  const LinkCounters a_before = a_->CountersOf("b");
  const LinkCounters b_before = b_->CountersOf("a");
  const LoopUsage a_start = a_->Usage();
  const LoopUsage b_start = b_->Usage();
  const auto start = std::chrono::steady_clock::now();
  a_->OnLoop([&] { return a_->cluster().Send("b", ProbeOf(payload_)).ok(); });
  done.get_future().get();
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const LoopUsage a_used = a_->Usage() - a_start;
  const LoopUsage b_used = b_->Usage() - b_start;
  LinkCounters a_out = a_->CountersOf("b");
  LinkCounters b_out = b_->CountersOf("a");
  a_out.frames_out -= a_before.frames_out;
  a_out.bytes_out -= a_before.bytes_out;
  b_out.frames_out -= b_before.frames_out;
  b_out.bytes_out -= b_before.bytes_out;
  EXPECT_EQ(answered, round_trips);
  Report("ping-pong", 2 * round_trips, a_used, b_used, wall_s, a_out, b_out);
}

TEST_F(PeerFrameBenchmark, DISABLED_Streamed) {
  std::promise<void> done;
  int received = 0;
  int wrong = 0;
  const int total = EnvOr("SESSIOND_BENCH_MESSAGES", 1'000'000);
  b_->OnLoop([&] {
    return b_->cluster()
        .Subscribe(PeerEnvelope::kProbe,
                   [&](const PeerIdentity&, const PeerEnvelope& envelope) {
                     if (envelope.probe().payload().size() != payload_.size()) ++wrong;
                     if (++received == total) done.set_value();
                   })
        .ok();
  });
  const LinkCounters a_before = a_->CountersOf("b");
  const LoopUsage a_start = a_->Usage();
  const LoopUsage b_start = b_->Usage();
  const auto start = std::chrono::steady_clock::now();
  asio::co_spawn(
      a_->io(),
      [](Cluster* cluster, const std::string* payload, int total) -> asio::awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        int sent = 0;
        while (sent < total) {
          // A burst per loop turn; a full queue waits for the writer.
          for (int i = 0; i < 64 && sent < total; ++i) {
            if (!cluster->Send("b", ProbeOf(*payload)).ok()) break;
            ++sent;
          }
          co_await asio::post(executor, asio::use_awaitable);
        }
      }(&a_->cluster(), &payload_, total),
      asio::detached);
  done.get_future().get();
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const LoopUsage a_used = a_->Usage() - a_start;
  const LoopUsage b_used = b_->Usage() - b_start;
  LinkCounters a_out = a_->CountersOf("b");
  a_out.frames_out -= a_before.frames_out;
  a_out.bytes_out -= a_before.bytes_out;
  EXPECT_EQ(received, total);
  EXPECT_EQ(wrong, 0);
  Report("streamed", total, a_used, b_used, wall_s, a_out, LinkCounters{});
}

}  // namespace
}  // namespace sessiond
