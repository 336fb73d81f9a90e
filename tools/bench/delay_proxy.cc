#include "tools/bench/delay_proxy.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <future>
#include <list>
#include <set>
#include <string>
#include <utility>

namespace sessiond::bench {
namespace {

using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// A write gathers due chunks up to this many bytes, so a burst of small frames costs one syscall.
constexpr size_t kMaxWriteBatchBytes = 256u << 10;

void Reset(tcp::socket& socket) {
  boost::system::error_code ignored;
  if (!socket.is_open()) return;
  // Linger 0 makes close() send RST: the peer sees the link break, not an orderly end.
  socket.set_option(asio::socket_base::linger(true, 0), ignored);
  socket.close(ignored);
}

class ProxiedConnection;

}  // namespace

struct DelayProxy::State {
  State(asio::io_context& io, DelayProxyOptions opts)
      : io(io), options(std::move(opts)), acceptor(io) {}

  asio::io_context& io;
  const DelayProxyOptions options;
  tcp::acceptor acceptor;

  // Loop-only state.
  bool cut = false;
  bool stopped = false;
  uint64_t next_seed = 0;
  std::set<std::shared_ptr<ProxiedConnection>> connections;
  std::list<tcp::socket> blackholed;

  // Readable from any thread.
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> open{0};
  std::atomic<uint64_t> bytes_to_target{0};
  std::atomic<uint64_t> bytes_to_client{0};
};

namespace {

// One accepted connection and its connection to the target. Lives on the proxy's loop; its
// coroutines each hold a shared_ptr to it, so it outlives Close() until the last one has returned.
class ProxiedConnection : public std::enable_shared_from_this<ProxiedConnection> {
 public:
  ProxiedConnection(std::shared_ptr<DelayProxy::State> state, tcp::socket client)
      : state_(std::move(state)),
        client_(std::move(client)),
        target_(state_->io),
        up_(state_->io, state_->options.to_target, Seed(), &state_->bytes_to_target),
        down_(state_->io, state_->options.to_client, Seed(), &state_->bytes_to_client),
        idle_(state_->io),
        connect_deadline_(state_->io) {}

  // Connects to the target, then pumps both directions until either side ends.
  asio::awaitable<void> Run() {
    auto self = shared_from_this();
    const auto& options = state_->options;
    connect_deadline_.expires_after(options.connect_timeout);
    connect_deadline_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      if (auto c = weak.lock(); c && !ec) c->Close(/*reset=*/true);
    });
    boost::system::error_code ec;
    co_await target_.async_connect(options.target, asio::redirect_error(asio::use_awaitable, ec));
    connect_deadline_.cancel();
    if (ec || closed_) {
      Close(/*reset=*/true);
      co_return;
    }
    target_.set_option(tcp::no_delay(true), ec);
    client_.set_option(tcp::no_delay(true), ec);
    last_activity_ = Clock::now();
    auto executor = co_await asio::this_coro::executor;
    asio::co_spawn(executor, Read(client_, up_), asio::detached);
    asio::co_spawn(executor, Write(target_, up_), asio::detached);
    asio::co_spawn(executor, Read(target_, down_), asio::detached);
    asio::co_spawn(executor, Write(client_, down_), asio::detached);
    asio::co_spawn(executor, WatchIdle(), asio::detached);
  }

  // Closes both sockets (with a reset when `reset`) and leaves the proxy's registry. Idempotent.
  void Close(bool reset) {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    if (reset) {
      Reset(client_);
      Reset(target_);
    } else {
      client_.close(ignored);
      target_.close(ignored);
    }
    for (Direction* d : {&up_, &down_}) {
      d->wake_writer.cancel();
      d->wake_reader.cancel();
      d->write_deadline.cancel();
    }
    idle_.cancel();
    connect_deadline_.cancel();
    state_->open.fetch_sub(1, std::memory_order_relaxed);
    // Erasing may drop the registry's reference; `self` keeps this alive until we return.
    auto self = shared_from_this();
    state_->connections.erase(self);
  }

 private:
  struct Chunk {
    Clock::time_point release;
    std::string bytes;
    bool end_of_stream = false;
  };

  // One direction: the sender's bytes wait here, in order, until their release time.
  struct Direction {
    Direction(asio::io_context& io, LinkShape shape, uint64_t seed, std::atomic<uint64_t>* counter)
        : schedule(shape, seed),
          wake_writer(io),
          wake_reader(io),
          write_deadline(io),
          forwarded(counter) {}

    LinkSchedule schedule;
    std::deque<Chunk> queue;
    size_t queued_bytes = 0;
    bool delivered_end = false;
    // Timers used as condition variables: a waiter sleeps until cancel() or the expiry it set.
    asio::steady_timer wake_writer;
    asio::steady_timer wake_reader;
    asio::steady_timer write_deadline;
    std::atomic<uint64_t>* forwarded;
  };

  uint64_t Seed() { return state_->options.seed * 0x9E3779B97F4A7C15ull + ++state_->next_seed; }

  static asio::awaitable<void> Sleep(asio::steady_timer& timer, Clock::time_point until) {
    boost::system::error_code ec;
    timer.expires_at(until);
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  asio::awaitable<void> Read(tcp::socket& from, Direction& d) {
    auto self = shared_from_this();
    std::string buffer(state_->options.read_chunk_bytes, '\0');
    while (!closed_) {
      if (d.queued_bytes >= state_->options.max_queued_bytes) {
        co_await Sleep(d.wake_reader, Clock::time_point::max());
        continue;
      }
      boost::system::error_code ec;
      const size_t n = co_await from.async_read_some(asio::buffer(buffer),
                                                     asio::redirect_error(asio::use_awaitable, ec));
      if (closed_) co_return;
      const auto now = Clock::now();
      if (ec) {
        if (ec != asio::error::eof) {
          Close(/*reset=*/true);
          co_return;
        }
        // An orderly end travels like data: after everything sent before it.
        d.queue.push_back(Chunk{d.schedule.Release(now, 0), {}, true});
        d.wake_writer.cancel();
        co_return;
      }
      last_activity_ = now;
      d.queue.push_back(Chunk{d.schedule.Release(now, n), buffer.substr(0, n), false});
      d.queued_bytes += n;
      d.wake_writer.cancel();
    }
  }

  asio::awaitable<void> Write(tcp::socket& to, Direction& d) {
    auto self = shared_from_this();
    std::string batch;
    while (!closed_) {
      if (d.queue.empty()) {
        co_await Sleep(d.wake_writer, Clock::time_point::max());
        continue;
      }
      const auto now = Clock::now();
      if (d.queue.front().release > now) {
        co_await Sleep(d.wake_writer, d.queue.front().release);
        continue;
      }
      if (d.queue.front().end_of_stream) {
        boost::system::error_code ignored;
        to.shutdown(tcp::socket::shutdown_send, ignored);
        d.queue.pop_front();
        d.delivered_end = true;
        if (up_.delivered_end && down_.delivered_end) Close(/*reset=*/false);
        co_return;
      }
      batch.clear();
      while (!d.queue.empty() && !d.queue.front().end_of_stream && d.queue.front().release <= now &&
             batch.size() < kMaxWriteBatchBytes) {
        batch += d.queue.front().bytes;
        d.queue.pop_front();
      }
      d.write_deadline.expires_after(state_->options.write_timeout);
      d.write_deadline.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
        if (auto c = weak.lock(); c && !ec) c->Close(/*reset=*/true);
      });
      boost::system::error_code ec;
      co_await asio::async_write(to, asio::buffer(batch),
                                 asio::redirect_error(asio::use_awaitable, ec));
      d.write_deadline.cancel();
      if (closed_) co_return;
      if (ec) {
        Close(/*reset=*/true);
        co_return;
      }
      last_activity_ = Clock::now();
      d.queued_bytes -= batch.size();
      d.forwarded->fetch_add(batch.size(), std::memory_order_relaxed);
      d.wake_reader.cancel();
    }
  }

  asio::awaitable<void> WatchIdle() {
    auto self = shared_from_this();
    const auto timeout = state_->options.idle_timeout;
    while (!closed_) {
      co_await Sleep(idle_, last_activity_ + timeout);
      if (closed_) co_return;
      if (Clock::now() >= last_activity_ + timeout) Close(/*reset=*/true);
    }
  }

  std::shared_ptr<DelayProxy::State> state_;
  tcp::socket client_;
  tcp::socket target_;
  Direction up_;    // client -> target
  Direction down_;  // target -> client
  asio::steady_timer idle_;
  asio::steady_timer connect_deadline_;
  Clock::time_point last_activity_ = Clock::now();
  bool closed_ = false;
};

asio::awaitable<void> AcceptLoop(std::shared_ptr<DelayProxy::State> state) {
  asio::steady_timer backoff(state->io);
  while (!state->stopped) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await state->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (state->stopped) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of descriptors or a connection aborted before accept: try again shortly rather
      // than spin.
      backoff.expires_after(std::chrono::milliseconds(10));
      co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    state->accepted.fetch_add(1, std::memory_order_relaxed);
    const auto& options = state->options;
    if (state->cut) {
      if (options.cut_mode == DelayProxyOptions::CutMode::kBlackhole &&
          state->blackholed.size() < options.max_connections) {
        state->blackholed.push_back(std::move(socket));
      } else {
        Reset(socket);
      }
      continue;
    }
    if (state->connections.size() >= options.max_connections) {
      Reset(socket);
      continue;
    }
    auto connection = std::make_shared<ProxiedConnection>(state, std::move(socket));
    state->connections.insert(connection);
    state->open.fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(state->io, connection->Run(), asio::detached);
  }
}

void CloseAll(DelayProxy::State& state) {
  // Close() erases from the set, so walk a copy.
  auto connections = state.connections;
  for (const auto& c : connections) c->Close(/*reset=*/true);
  for (auto& socket : state.blackholed) Reset(socket);
  state.blackholed.clear();
}

}  // namespace

Result<std::unique_ptr<DelayProxy>> DelayProxy::Create(asio::io_context& io,
                                                       DelayProxyOptions options) {
  auto state = std::make_shared<State>(io, std::move(options));
  const tcp::endpoint listen(asio::ip::address_v4::loopback(), state->options.listen_port);
  boost::system::error_code ec;
  state->acceptor.open(listen.protocol(), ec);
  if (!ec) state->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) state->acceptor.bind(listen, ec);
  if (!ec) state->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable("delay proxy cannot listen on " + listen.address().to_string() + ":" +
                       std::to_string(listen.port()) + ": " + ec.message() +
                       "; pick another port or 0");
  }
  const tcp::endpoint bound = state->acceptor.local_endpoint(ec);
  asio::co_spawn(io, AcceptLoop(state), asio::detached);
  return std::unique_ptr<DelayProxy>(new DelayProxy(io, std::move(state), bound));
}

DelayProxy::DelayProxy(asio::io_context& io, std::shared_ptr<State> state,
                       asio::ip::tcp::endpoint endpoint)
    : io_(io), state_(std::move(state)), endpoint_(endpoint) {}

DelayProxy::~DelayProxy() { Stop(); }

void DelayProxy::RunOnLoop(std::function<void()> fn) {
  if (io_.get_executor().running_in_this_thread() || io_.stopped()) {
    fn();
    return;
  }
  std::promise<void> done;
  auto finished = done.get_future();
  asio::post(io_, [&fn, &done] {
    fn();
    done.set_value();
  });
  finished.wait();
}

void DelayProxy::Cut() {
  RunOnLoop([state = state_] {
    state->cut = true;
    CloseAll(*state);
  });
}

void DelayProxy::Restore() {
  RunOnLoop([state = state_] {
    state->cut = false;
    for (auto& socket : state->blackholed) Reset(socket);
    state->blackholed.clear();
  });
}

void DelayProxy::Stop() {
  RunOnLoop([state = state_] {
    if (state->stopped) return;
    state->stopped = true;
    boost::system::error_code ignored;
    state->acceptor.close(ignored);
    CloseAll(*state);
  });
}

uint64_t DelayProxy::connections_accepted() const {
  return state_->accepted.load(std::memory_order_relaxed);
}
uint64_t DelayProxy::connections_open() const {
  return state_->open.load(std::memory_order_relaxed);
}
uint64_t DelayProxy::bytes_to_target() const {
  return state_->bytes_to_target.load(std::memory_order_relaxed);
}
uint64_t DelayProxy::bytes_to_client() const {
  return state_->bytes_to_client.load(std::memory_order_relaxed);
}

}  // namespace sessiond::bench
