// DelayProxy: a TCP proxy on loopback that adds the latency, jitter and bandwidth limit of a real
// network to the links it carries, and can cut them.
//
// Loopback has none of a datacenter's ~0.1-0.5 ms round trips, so replication modes look alike on
// it. sessiond-bench puts one DelayProxy in front of every peer link (and the Redis link), so that
// `--link-delay-ms 0.5` makes the cluster behave like one spread over a datacenter.
//
// It listens on 127.0.0.1 (port 0 unless told otherwise) and forwards each accepted connection to
// `target`. Bytes are read in chunks as they arrive; each direction gives every chunk a release
// time (LinkSchedule: delay, jitter, bandwidth, order kept) and writes it to the other side when
// due. A direction holds at most `max_queued_bytes`; beyond that it stops reading, so a slow link
// pushes back on its sender as TCP does.
//
// Cut() drops every connection (the peers see a reset) and, until Restore(), treats new ones per
// `cut_mode`: kReset accepts and resets them at once (the sender sees the connection refused or
// reset), kBlackhole accepts them and never answers nor forwards (the sender sees silence and its
// timeouts fire, as in a partition). The listening port is kept, so Restore() cannot lose it.
//
// Threading: the proxy runs on one io_context, run by one thread the caller owns (several
// proxies may share it). Create(), Cut(), Restore(), Stop() and the accessors may be called from
// any thread; Cut/Restore/Stop return once done. They must not be called while holding anything the
// io_context thread waits for.
#ifndef SESSIOND_TOOLS_BENCH_DELAY_PROXY_H_
#define SESSIOND_TOOLS_BENCH_DELAY_PROXY_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "sessiond/asio.h"
#include "sessiond/status.h"
#include "tools/bench/link_schedule.h"

namespace sessiond::bench {

struct DelayProxyOptions {
  enum class CutMode { kReset, kBlackhole };

  // Where accepted connections are forwarded.
  asio::ip::tcp::endpoint target{};
  // Port to listen on, on 127.0.0.1; 0 picks a free one.
  uint16_t listen_port = 0;
  LinkShape to_target{};  // bytes from the connecting side towards the target
  LinkShape to_client{};  // bytes from the target back
  CutMode cut_mode = CutMode::kReset;

  size_t read_chunk_bytes = 64u << 10;
  // Per direction and connection; reading pauses while this much waits for release.
  size_t max_queued_bytes = 4u << 20;
  size_t max_connections = 1024;
  std::chrono::milliseconds connect_timeout{2000};
  // A write the receiver does not take within this closes the connection.
  std::chrono::milliseconds write_timeout{10'000};
  // A connection with no byte in either direction for this long is closed.
  std::chrono::milliseconds idle_timeout{600'000};
  uint64_t seed = 1;
};

class DelayProxy {
 public:
  // Binds the listening socket now and starts accepting on `io` (which the caller runs).
  // UNAVAILABLE with the reason when the port cannot be bound.
  static Result<std::unique_ptr<DelayProxy>> Create(asio::io_context& io,
                                                    DelayProxyOptions options);
  // Stops (see Stop) and waits for it. Call from a thread other than io's, or after io stopped.
  ~DelayProxy();
  DelayProxy(const DelayProxy&) = delete;
  DelayProxy& operator=(const DelayProxy&) = delete;

  // The listening endpoint (127.0.0.1:port).
  asio::ip::tcp::endpoint endpoint() const { return endpoint_; }
  uint16_t port() const { return endpoint_.port(); }

  // Resets every connection and handles new ones per cut_mode until Restore().
  void Cut();
  // New connections are forwarded again. Connections blackholed meanwhile are closed.
  void Restore();
  // Stops accepting and closes every connection. Idempotent.
  void Stop();

  // Counters, readable from any thread.
  uint64_t connections_accepted() const;
  uint64_t connections_open() const;
  uint64_t bytes_to_target() const;
  uint64_t bytes_to_client() const;

  struct State;  // shared with the connections' coroutines; defined in the .cc

 private:
  DelayProxy(asio::io_context& io, std::shared_ptr<State> state, asio::ip::tcp::endpoint endpoint);
  // Runs `fn` on the proxy's io_context and waits for it; runs it here when already on that
  // thread or when the io_context has stopped (nothing else can then touch the state).
  void RunOnLoop(std::function<void()> fn);

  asio::io_context& io_;
  std::shared_ptr<State> state_;
  asio::ip::tcp::endpoint endpoint_;
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_DELAY_PROXY_H_
