// What in-process cluster tests share: waiting on an io_context for a condition, a Relay that can
// stand in front of a node's peer listener to swallow or refuse traffic, and the cluster options
// of a test node (127.0.0.1, port 0, fast reconnects, no heartbeats: tests drive time).
#ifndef SESSIOND_TESTS_UNIT_TEST_CLUSTER_SUPPORT_H_
#define SESSIOND_TESTS_UNIT_TEST_CLUSTER_SUPPORT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "replication/clock.h"
#include "replication/cluster/cluster.h"
#include "sessiond/asio.h"

namespace sessiond::testing {

using namespace std::chrono_literals;

inline bool RunUntil(asio::io_context& io, const std::function<bool()>& done,
                     std::chrono::milliseconds limit = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(10ms);
  }
  return true;
}

// A TCP relay to a port on 127.0.0.1. Passes bytes both ways, or (blackhole) reads and drops
// them, or (refuse) closes new connections at once. Cut() closes every relayed connection, as a
// broken network would. Its address exists before the target does, so a node can advertise it.
class Relay {
 public:
  enum class Mode { kPass, kBlackhole, kRefuse };

  explicit Relay(asio::io_context& io)
      : io_(io), acceptor_(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    state_ = std::make_shared<State>();
    Accept();
  }
  ~Relay() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    Cut();
  }

  std::string address() const {
    return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  Endpoint endpoint() const {
    return Endpoint{Endpoint::Kind::kTcp, "127.0.0.1", acceptor_.local_endpoint().port(), ""};
  }
  void set_target(uint16_t port) { state_->target_port = port; }
  void set_mode(Mode mode) { state_->mode = mode; }
  // Bytes read and dropped in blackhole mode.
  uint64_t dropped() const { return state_->dropped; }

  void Cut() {
    for (auto& weak : state_->sockets) {
      if (auto socket = weak.lock()) {
        boost::system::error_code ec;
        socket->close(ec);
      }
    }
    state_->sockets.clear();
  }

 private:
  using Socket = asio::ip::tcp::socket;
  struct State {
    Mode mode = Mode::kPass;
    uint16_t target_port = 0;
    uint64_t dropped = 0;
    std::vector<std::weak_ptr<Socket>> sockets;
  };

  void Accept() {
    acceptor_.async_accept([this, state = state_](boost::system::error_code ec, Socket socket) {
      if (ec) return;
      if (state->mode == Mode::kRefuse || state->target_port == 0) {
        socket.close(ec);
      } else {
        auto inbound = std::make_shared<Socket>(std::move(socket));
        auto outbound = std::make_shared<Socket>(io_);
        state->sockets.push_back(inbound);
        state->sockets.push_back(outbound);
        outbound->async_connect(
            asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), state->target_port),
            [state, inbound, outbound](boost::system::error_code ec) {
              if (ec) {
                inbound->close(ec);
                return;
              }
              Pump(state, inbound, outbound);
              Pump(state, outbound, inbound);
            });
      }
      Accept();
    });
  }

  static void Pump(std::shared_ptr<State> state, std::shared_ptr<Socket> from,
                   std::shared_ptr<Socket> to) {
    auto buffer = std::make_shared<std::vector<char>>(64 * 1024);
    from->async_read_some(
        asio::buffer(*buffer), [state, from, to, buffer](boost::system::error_code ec, size_t n) {
          if (ec) {
            to->close(ec);
            return;
          }
          if (state->mode == Mode::kBlackhole) {
            state->dropped += n;
            Pump(state, from, to);
            return;
          }
          asio::async_write(*to, asio::buffer(buffer->data(), n),
                            [state, from, to, buffer](boost::system::error_code ec, size_t) {
                              if (ec) {
                                from->close(ec);
                                return;
                              }
                              Pump(state, from, to);
                            });
        });
  }

  asio::io_context& io_;
  asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<State> state_;
};

// The cluster options of test node `id` dialing `seeds`. With a relay, the node tells its peers
// to dial it through the relay (set the relay's target once the node listens).
inline ClusterOptions TestClusterOptions(const std::string& id, std::vector<Endpoint> seeds,
                                         const Relay* relay, const Clock* clock) {
  ClusterOptions options;
  options.network.self = NodeIdentity{"test", id, 0};
  options.network.listen = Endpoint{Endpoint::Kind::kTcp, "127.0.0.1", 0, ""};
  if (relay != nullptr) options.network.advertise_address = relay->address();
  options.network.seeds = std::move(seeds);
  options.network.reconnect_min = 10ms;
  options.network.reconnect_max = 100ms;
  options.network.link.read_timeout = 60s;
  options.heartbeat_interval = 0ms;
  options.clock = clock;
  return options;
}

}  // namespace sessiond::testing

#endif  // SESSIOND_TESTS_UNIT_TEST_CLUSTER_SUPPORT_H_
