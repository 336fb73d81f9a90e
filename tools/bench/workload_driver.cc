#include "tools/bench/workload_driver.h"

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "sessiond/asio.h"
#include "tools/bench/sessiond_target.h"

namespace sessiond::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Per-second histograms need less precision than the run's: 2 digits (<1% error), up to 1 min.
constexpr HistogramOptions kTimelineHistogram{.highest_trackable = 60'000'000'000,
                                              .significant_digits = 2};
// A probe that is not visible at the other node within this long counts as unseen.
constexpr auto kLagProbeDeadline = 2s;
// Open loop: a send this much later than intended counts as late.
constexpr auto kLateSend = 1ms;

}  // namespace

// One load thread: its io_context, its clients, its slice of the sessions and everything it
// measured. Only its own thread touches it while it runs; the driver reads it after joining.
class WorkloadDriver::LoadThread {
 public:
  LoadThread(int index, int node_count, const SessionTargetFactory& factory,
             const WorkloadOptions& options, int connections_per_node)
      : index_(index),
        node_count_(node_count),
        options_(options),
        rng_(options.seed * 1000003 + index),
        target_(factory(io_.get_executor(), connections_per_node)) {}

  int index() const { return index_; }
  size_t session_count() const { return sessions_.size(); }
  int worker_count() const { return target_->connections(); }

  // Runs `body` on this thread's loop in a new OS thread; Join() waits for it to return. The
  // loop is stopped then rather than run dry: the clients' connections keep reading forever.
  void Launch(std::function<asio::awaitable<void>(LoadThread&)> body) {
    io_.restart();
    asio::co_spawn(io_, body(*this), [this](std::exception_ptr) { io_.stop(); });
    thread_ = std::thread([this] { io_.run(); });
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

  // Creates `count` sessions, the k-th homed at node (first_global + k) % nodes.
  asio::awaitable<void> Populate(int count, int first_global, RunProgress* progress) {
    Status connected = co_await target_->Connect();
    if (!connected.ok()) {
      populate_error_ = connected;
      co_return;
    }
    int next = 0;
    const int workers = std::max(1, worker_count());
    auto executor = co_await asio::this_coro::executor;
    int running = workers;
    asio::steady_timer all_done(executor, Clock::time_point::max());
    for (int w = 0; w < workers; ++w) {
      asio::co_spawn(
          executor,
          [&, this]() -> asio::awaitable<void> {
            while (next < count && !progress->stop.load(std::memory_order_relaxed)) {
              const int k = next++;
              const uint32_t home = static_cast<uint32_t>((first_global + k) % node_count_);
              Status status = co_await CreateSession(home, /*measured=*/false);
              if (!status.ok()) {
                if (populate_error_.ok()) populate_error_ = status;
                break;
              }
              progress->ok.fetch_add(1, std::memory_order_relaxed);
            }
            if (--running == 0) all_done.cancel();
          },
          asio::detached);
    }
    boost::system::error_code ec;
    if (running > 0) co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  // The load itself: closed or open loop until `end`, measuring from `measure_start`.
  asio::awaitable<void> Load(Clock::time_point start, Clock::time_point measure_start,
                             Clock::time_point end, RunProgress* progress, bool probe_lag) {
    measure_start_ = measure_start;
    end_ = end;
    start_ = start;
    progress_ = progress;
    auto executor = co_await asio::this_coro::executor;
    // Every task of the run; Load returns once all have.
    int running = 0;
    asio::steady_timer all_done(executor, Clock::time_point::max());
    auto start_task = [&](asio::awaitable<void> task) {
      ++running;
      asio::co_spawn(executor, std::move(task), [&](std::exception_ptr) {
        if (--running == 0) all_done.cancel();
      });
    };
    if (probe_lag) start_task(ProbeLag());
    if (options_.rate > 0) {
      start_task(OpenLoop());
    } else {
      for (int w = 0; w < worker_count(); ++w) start_task(ClosedLoopWorker());
    }
    boost::system::error_code ec;
    if (running > 0) co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  const Status& populate_error() const { return populate_error_; }

  // Moves what this thread measured into `out` (merging).
  void CollectInto(WorkloadResult& out, std::map<int64_t, TimelineSecond>& timeline,
                   std::map<int64_t, Histogram>& timeline_latency) {
    for (int op = 0; op < kOpCount; ++op) {
      out.by_op[op].Merge(by_op_[op]);
      out.all.Merge(by_op_[op]);
    }
    out.late_sends += late_sends_;
    out.lag.Merge(lag_);
    out.lag_read_rtt.Merge(lag_read_rtt_);
    out.lag_seen_first_read += lag_seen_first_read_;
    out.lag_probes += lag_probes_;
    out.lag_unseen += lag_unseen_;
    for (auto& [second, point] : timeline_) {
      TimelineSecond& merged = timeline[second];
      merged.second = second;
      merged.ok += point.ok;
      merged.failed += point.failed;
    }
    for (auto& [second, histogram] : timeline_latency_) {
      auto [it, inserted] = timeline_latency.try_emplace(second, kTimelineHistogram);
      it->second.Merge(histogram);
    }
    out.ledger.Merge(std::move(ledger_));
  }

 private:
  struct SessionRef {
    std::string id;
    uint32_t home;
  };

  uint32_t RouteTo(uint32_t home) {
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    if (coin(rng_) < options_.sticky) return home;
    std::uniform_int_distribution<uint32_t> any(0, static_cast<uint32_t>(node_count_ - 1));
    return any(rng_);
  }

  uint64_t NextWriteId() { return (static_cast<uint64_t>(index_ + 1) << 48) | ++write_counter_; }

  std::string AttributeName(int i) const { return "attr" + std::to_string(i); }

  asio::awaitable<Status> CreateSession(uint32_t node, bool measured,
                                        Clock::time_point intended = {}) {
    Attributes attributes;
    std::vector<std::pair<std::string, uint64_t>> written;
    for (int a = 0; a < options_.attributes; ++a) {
      const uint64_t id = NextWriteId();
      attributes[AttributeName(a)] = LostWriteLedger::EncodeValue(id, options_.value_bytes);
      written.emplace_back(AttributeName(a), id);
    }
    const auto sent = Clock::now();
    Result<std::string> session = co_await target_->Create(node, std::move(attributes));
    const auto done = Clock::now();
    if (measured) Record(Op::kCreate, session.status(), intended, done);
    if (!session.ok()) co_return session.status();
    if (options_.record_writes) {
      ledger_.RecordSession(*session, node);
      for (const auto& [name, id] : written) ledger_.RecordWrite(*session, name, id, sent, done);
    }
    sessions_.push_back(SessionRef{std::move(*session), node});
    co_return Status::Ok();
  }

  Op PickOp() {
    std::uniform_int_distribution<int> dice(0, options_.mix.total() - 1);
    const int roll = dice(rng_);
    if (roll < options_.mix.read) return Op::kRead;
    if (roll < options_.mix.read + options_.mix.write) return Op::kWrite;
    return Op::kCreate;
  }

  // One request of the mix, intended to go out at `intended`.
  asio::awaitable<void> DoOne(Clock::time_point intended) {
    Op op = PickOp();
    if (sessions_.empty()) op = Op::kCreate;
    const bool measured = intended >= measure_start_ && intended < end_;
    if (op == Op::kCreate) {
      // A new user has no home yet: the load balancer sends them anywhere.
      std::uniform_int_distribution<uint32_t> any(0, static_cast<uint32_t>(node_count_ - 1));
      const uint32_t node = any(rng_);
      Status ignored = co_await CreateSession(node, measured, intended);
      (void)ignored;  // counted in Record
      co_return;
    }
    std::uniform_int_distribution<size_t> pick(0, sessions_.size() - 1);
    // Copied: sessions_ may grow (and move) while this request is suspended.
    const SessionRef session = sessions_[pick(rng_)];
    const uint32_t node = RouteTo(session.home);
    if (op == Op::kRead) {
      Status got = co_await target_->Get(node, session.id, options_.touch_on_read, nullptr);
      Record(Op::kRead, got, intended, Clock::now());
      co_return;
    }
    std::uniform_int_distribution<int> which(0, std::max(0, options_.attributes - 1));
    const std::string attribute = AttributeName(which(rng_));
    const uint64_t write_id = NextWriteId();
    const auto sent = Clock::now();
    Status updated = co_await target_->Set(
        node, session.id, attribute, LostWriteLedger::EncodeValue(write_id, options_.value_bytes));
    const auto done = Clock::now();
    Record(Op::kWrite, updated, intended, done);
    if (options_.record_writes) {
      ledger_.RecordWrite(session.id, attribute, write_id, sent,
                          updated.ok() ? std::optional<Clock::time_point>(done) : std::nullopt);
    }
  }

  void Record(Op op, const Status& status, Clock::time_point intended, Clock::time_point done) {
    const bool ok = status.ok();
    (ok ? progress_->ok : progress_->failed).fetch_add(1, std::memory_order_relaxed);
    const int64_t second = std::chrono::floor<std::chrono::seconds>(done - measure_start_).count();
    TimelineSecond& point = timeline_[second];
    (ok ? point.ok : point.failed) += 1;
    if (ok) {
      auto [it, inserted] = timeline_latency_.try_emplace(second, kTimelineHistogram);
      it->second.RecordFromIntended(intended, done);
    }
    if (intended < measure_start_ || intended >= end_) return;
    OpStats& stats = by_op_[static_cast<int>(op)];
    if (ok) {
      ++stats.ok;
      stats.latency.RecordFromIntended(intended, done);
    } else {
      ++stats.errors[std::string(StatusCodeName(status.code()))];
    }
  }

  bool Stopping() const {
    return Clock::now() >= end_ || progress_->stop.load(std::memory_order_relaxed);
  }

  asio::awaitable<void> ClosedLoopWorker() {
    while (!Stopping()) co_await DoOne(Clock::now());
  }

  asio::awaitable<void> OpenLoop() {
    auto executor = co_await asio::this_coro::executor;
    asio::steady_timer timer(executor);
    const double per_thread_rate = options_.rate / std::max(1, options_.threads);
    const auto interval = std::chrono::nanoseconds(static_cast<int64_t>(1e9 / per_thread_rate));
    int in_flight = 0;
    asio::steady_timer slot_free(executor, Clock::time_point::max());
    Clock::time_point intended = start_;
    while (intended < end_ && !progress_->stop.load(std::memory_order_relaxed)) {
      boost::system::error_code ec;
      if (Clock::now() < intended) {
        timer.expires_at(intended);
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      while (in_flight >= options_.max_in_flight_per_thread) {
        slot_free.expires_at(Clock::time_point::max());
        co_await slot_free.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      if (Clock::now() - intended > kLateSend && intended >= measure_start_) ++late_sends_;
      ++in_flight;
      asio::co_spawn(
          executor,
          [this, intended, &in_flight, &slot_free]() -> asio::awaitable<void> {
            co_await DoOne(intended);
            --in_flight;
            slot_free.cancel();
          },
          asio::detached);
      intended += interval;
    }
    // The spawned requests refer to in_flight and slot_free: wait for them before returning.
    while (in_flight > 0) {
      boost::system::error_code ec;
      slot_free.expires_at(Clock::time_point::max());
      co_await slot_free.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  // Writes at node 1 and polls node 2 until the value shows (see WorkloadResult::lag).
  asio::awaitable<void> ProbeLag() {
    auto executor = co_await asio::this_coro::executor;
    asio::steady_timer pause(executor);
    boost::system::error_code ec;

    Result<std::string> probe = co_await target_->Create(0, Attributes{});
    if (!probe.ok()) co_return;
    const std::string id = *probe;
    const auto interval =
        std::chrono::nanoseconds(static_cast<int64_t>(1e9 / options_.lag_probes_per_s));
    Attributes read;
    while (!Stopping()) {
      const auto next = Clock::now() + interval;
      const std::string value = LostWriteLedger::EncodeValue(NextWriteId(), 32);
      Status written = co_await target_->Set(0, id, "probe", value);
      const auto acked = Clock::now();
      if (written.ok()) {
        // seen_at: the reply of the first read that returned the value, so the lag is an upper
        // bound, over by at most that read's round trip (kept beside it).
        std::optional<Clock::time_point> seen_at;
        Clock::duration read_rtt{};
        int reads = 0;
        while (!seen_at && Clock::now() < acked + kLagProbeDeadline &&
               !progress_->stop.load(std::memory_order_relaxed)) {
          const auto sent = Clock::now();
          Status got = co_await target_->Get(1, id, false, &read);
          ++reads;
          if (got.ok()) {
            auto it = read.find("probe");
            if (it != read.end() && it->second == value) {
              seen_at = Clock::now();
              read_rtt = *seen_at - sent;
            }
          } else if (got.code() != v1::NOT_FOUND) {
            break;  // the reader node is gone or failing: this probe tells nothing
          }
        }
        if (acked >= measure_start_ && acked < end_) {
          ++lag_probes_;
          if (seen_at) {
            lag_.Record(
                std::chrono::duration_cast<std::chrono::nanoseconds>(*seen_at - acked).count());
            lag_read_rtt_.Record(
                std::chrono::duration_cast<std::chrono::nanoseconds>(read_rtt).count());
            if (reads == 1) ++lag_seen_first_read_;
          } else {
            ++lag_unseen_;
          }
        }
      }
      if (Clock::now() < next) {
        pause.expires_at(next);
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
    }
  }

  const int index_;
  const int node_count_;
  const WorkloadOptions& options_;
  asio::io_context io_;  // before target_, which lives on it
  std::thread thread_;
  std::mt19937_64 rng_;
  std::unique_ptr<SessionTarget> target_;
  std::vector<SessionRef> sessions_;
  uint64_t write_counter_ = 0;
  Status populate_error_;

  Clock::time_point start_{}, measure_start_{}, end_{};
  RunProgress* progress_ = nullptr;
  OpStats by_op_[kOpCount];
  uint64_t late_sends_ = 0;
  Histogram lag_;
  Histogram lag_read_rtt_;
  uint64_t lag_probes_ = 0;
  uint64_t lag_seen_first_read_ = 0;
  uint64_t lag_unseen_ = 0;
  std::map<int64_t, TimelineSecond> timeline_;
  std::map<int64_t, Histogram> timeline_latency_;
  LostWriteLedger ledger_;
};

WorkloadDriver::WorkloadDriver(std::vector<Endpoint> nodes, WorkloadOptions options)
    : WorkloadDriver(static_cast<int>(nodes.size()),
                     SessiondTarget::Factory(nodes, options.max_idle_s, options.request_deadline),
                     options) {}

WorkloadDriver::WorkloadDriver(int node_count, SessionTargetFactory factory,
                               WorkloadOptions options)
    : node_count_(node_count), factory_(std::move(factory)), options_(std::move(options)) {
  options_.threads = std::max(1, options_.threads);
  options_.connections = std::max(1, options_.connections);
  // Every thread needs a connection per node; more threads than connections would idle.
  options_.threads = std::min(options_.threads, options_.connections);
  for (int t = 0; t < options_.threads; ++t) {
    // Spread the connections of each node over the threads.
    const int share = options_.connections / options_.threads +
                      (t < options_.connections % options_.threads ? 1 : 0);
    threads_.push_back(
        std::make_unique<LoadThread>(t, std::max(1, node_count_), factory_, options_, share));
  }
}

WorkloadDriver::~WorkloadDriver() {
  for (auto& t : threads_) t->Join();
}

size_t WorkloadDriver::session_count() const {
  size_t n = 0;
  for (const auto& t : threads_) n += t->session_count();
  return n;
}

Status WorkloadDriver::Populate(RunProgress& progress) {
  if (node_count_ < 1) return InvalidArgument("the workload needs at least one node");
  progress.phase = 0;
  const int threads = static_cast<int>(threads_.size());
  int first = 0;
  for (int t = 0; t < threads; ++t) {
    const int count = options_.sessions / threads + (t < options_.sessions % threads ? 1 : 0);
    threads_[t]->Launch([count, first, &progress](LoadThread& thread) {
      return thread.Populate(count, first, &progress);
    });
    first += count;
  }
  for (auto& t : threads_) t->Join();
  for (auto& t : threads_) {
    if (!t->populate_error().ok()) {
      return Unavailable("creating the initial sessions failed: " + t->populate_error().message());
    }
  }
  if (progress.stop) return Unavailable("interrupted while creating the initial sessions");
  return Status::Ok();
}

Result<WorkloadResult> WorkloadDriver::Run(RunProgress& progress) {
  const auto start = Clock::now();
  const auto measure_start = start + options_.warmup;
  const auto end = measure_start + options_.duration;
  const bool probe_lag = options_.lag_probes_per_s > 0 && node_count_ >= 2;
  progress.phase = 1;
  for (auto& t : threads_) {
    const bool probe_here = probe_lag && t->index() == 0;
    t->Launch([=, &progress](LoadThread& thread) {
      return thread.Load(start, measure_start, end, &progress, probe_here);
    });
  }
  // The measured phase begins at measure_start whatever the threads are doing.
  while (Clock::now() < measure_start && !progress.stop) std::this_thread::sleep_for(10ms);
  progress.phase = 2;
  for (auto& t : threads_) t->Join();
  progress.phase = 3;

  WorkloadResult result;
  const auto finished = std::min(Clock::now(), end);
  result.interrupted = progress.stop.load();
  result.measured = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::max(finished - measure_start, Clock::duration::zero()));
  std::map<int64_t, TimelineSecond> timeline;
  std::map<int64_t, Histogram> timeline_latency;
  for (auto& t : threads_) t->CollectInto(result, timeline, timeline_latency);
  const int64_t last_second = std::chrono::ceil<std::chrono::seconds>(options_.duration).count();
  for (auto& [second, point] : timeline) {
    // Requests in flight at the end finish after it; their partial second would look like a drop.
    if (second >= last_second) continue;
    if (auto it = timeline_latency.find(second); it != timeline_latency.end()) {
      point.p50_ns = it->second.ValueAtPercentile(50);
      point.p99_ns = it->second.ValueAtPercentile(99);
    }
    result.timeline.push_back(point);
  }
  return result;
}

LostWriteLedger::Verdict WorkloadDriver::VerifyWrites(const LostWriteLedger& ledger,
                                                      const std::vector<bool>& alive_nodes) {
  const int n = node_count_;
  auto reader_node = [&](uint32_t home) -> int {
    if (home < alive_nodes.size() && alive_nodes[home]) return static_cast<int>(home);
    for (int i = 0; i < n; ++i) {
      if (i < static_cast<int>(alive_nodes.size()) && alive_nodes[i]) return i;
    }
    return -1;
  };

  asio::io_context io;
  std::unique_ptr<SessionTarget> target = factory_(io.get_executor(), 1);
  const auto sessions = ledger.Sessions();
  std::map<std::string, LostWriteLedger::Observation> seen;
  size_t next = 0;
  bool connected = false;
  constexpr int kReaders = 32;
  int readers = kReaders;
  for (int r = 0; r < kReaders; ++r) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          while (next < sessions.size()) {
            const auto& [id, home] = sessions[next++];
            const int node = reader_node(home);
            LostWriteLedger::Observation observation{Unavailable("no node is alive"), {}};
            // A few tries: a connection broken by the crash must not pass for a lost session.
            for (int attempt = 0; node >= 0 && attempt < 3; ++attempt) {
              if (attempt == 0 && !connected) {
                Status status = co_await target->Connect();
                connected = status.ok();
              }
              Status got = co_await target->Get(static_cast<uint32_t>(node), id, false,
                                                &observation.attributes);
              observation.status = got;
              if (got.ok() || got.code() == v1::NOT_FOUND) break;
            }
            seen[id] = std::move(observation);
          }
        },
        // The clients' connections keep the loop busy forever: stop it when the readers are done.
        [&](std::exception_ptr) {
          if (--readers == 0) io.stop();
        });
  }
  io.run();
  return ledger.Check([&](const std::string& id, uint32_t) {
    auto it = seen.find(id);
    return it != seen.end() ? it->second
                            : LostWriteLedger::Observation{Unavailable("not read"), {}};
  });
}

}  // namespace sessiond::bench
