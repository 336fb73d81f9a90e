#include "sessiond/client_listener.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "replication/log_errors.h"

namespace sessiond {
namespace {

using namespace std::chrono_literals;

// How long a shutdown waits for connections to take their last answers.
constexpr auto kDrainTimeout = 5s;

std::string TcpPeerName(const asio::ip::tcp::socket& socket) {
  boost::system::error_code ec;
  asio::ip::tcp::endpoint endpoint = socket.remote_endpoint(ec);
  if (ec) return "tcp:unknown";
  if (endpoint.address().is_v6()) {
    return "[" + endpoint.address().to_string() + "]:" + std::to_string(endpoint.port());
  }
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

// Resolves the host of a listen address: a literal address, or a name resolved once at start.
Result<asio::ip::address> ResolveListenHost(asio::any_io_executor executor,
                                            const std::string& host) {
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(host, ec);
  if (!ec) return address;
  asio::ip::tcp::resolver resolver(executor);
  auto results = resolver.resolve(host, "", ec);
  if (ec || results.empty()) {
    return Unavailable("cannot resolve listen host '" + host +
                       "': " + (ec ? ec.message() : std::string("no address")) +
                       "; use an IP address such as 127.0.0.1");
  }
  return results.begin()->endpoint().address();
}

}  // namespace

ClientListener::ClientListener(asio::any_io_executor executor, RequestHandler& handler,
                               Metrics& metrics, ConnectionOptions options, size_t max_connections)
    : executor_(executor),
      handler_(handler),
      metrics_(metrics),
      options_(std::move(options)),
      max_connections_(max_connections),
      tcp_acceptor_(executor),
      unix_acceptor_(executor),
      sweep_timer_(executor),
      drained_(executor) {}

ClientListener::~ClientListener() {
  if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
}

Result<uint16_t> ClientListener::ListenTcp(const Endpoint& endpoint) {
  Result<asio::ip::address> address = ResolveListenHost(executor_, endpoint.host);
  if (!address.ok()) return address.status();
  const asio::ip::tcp::endpoint bind_to(*address, endpoint.port);
  boost::system::error_code ec;
  tcp_acceptor_.open(bind_to.protocol(), ec);
  if (!ec) tcp_acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) tcp_acceptor_.bind(bind_to, ec);
  if (!ec) tcp_acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    tcp_acceptor_.close();
    return Unavailable("cannot listen for clients on " + endpoint.ToString() + ": " + ec.message() +
                       "; pick a free port with --listen (port 0 picks one) or stop what holds it");
  }
  return tcp_acceptor_.local_endpoint().port();
}

Status ClientListener::ListenUnix(const std::string& path) {
  const asio::local::stream_protocol::endpoint endpoint(path);
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Unavailable("--unix " + path +
                         " exists and is not a socket; remove it or choose another path");
    }
    asio::local::stream_protocol::socket probe(executor_);
    boost::system::error_code ec;
    probe.connect(endpoint, ec);
    if (!ec) {
      return Unavailable("another process accepts connections on the Unix socket " + path +
                         "; stop it or choose another --unix path");
    }
    // Left behind by a daemon that did not shut down cleanly.
    ::unlink(path.c_str());
  }
  boost::system::error_code ec;
  unix_acceptor_.open(endpoint.protocol(), ec);
  if (!ec) unix_acceptor_.bind(endpoint, ec);
  if (!ec) unix_acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    unix_acceptor_.close();
    return Unavailable("cannot listen for clients on the Unix socket " + path + ": " +
                       ec.message() + "; check that its directory exists and is writable");
  }
  unix_path_ = path;
  return Status::Ok();
}

void ClientListener::Start() {
  if (tcp_acceptor_.is_open()) {
    asio::co_spawn(executor_, AcceptTcp(), LogErrors("TCP client acceptor"));
  }
  if (unix_acceptor_.is_open()) {
    asio::co_spawn(executor_, AcceptUnix(), LogErrors("Unix client acceptor"));
  }
  asio::co_spawn(executor_, Sweep(), LogErrors("client deadline sweep"));
}

asio::awaitable<void> ClientListener::Shutdown() {
  shutting_down_ = true;
  boost::system::error_code ignored;
  tcp_acceptor_.close(ignored);
  unix_acceptor_.close(ignored);
  if (!unix_path_.empty()) {
    ::unlink(unix_path_.c_str());
    unix_path_.clear();
  }
  if (!connections_.empty()) {
    spdlog::info("closing {} client connections", connections_.size());
  }
  for (const std::shared_ptr<ClientConnection>& connection : connections_) connection->Drain();
  // A client that does not take its answers must not hold up the shutdown for the whole write
  // deadline: after kDrainTimeout what is left is closed.
  const auto give_up_at = std::chrono::steady_clock::now() + kDrainTimeout;
  bool aborted = false;
  while (!connections_.empty()) {
    drained_.expires_at(aborted ? asio::steady_timer::time_point::max() : give_up_at);
    co_await drained_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    if (!aborted && std::chrono::steady_clock::now() >= give_up_at) {
      aborted = true;
      for (const std::shared_ptr<ClientConnection>& connection : connections_) {
        connection->Abort("the daemon is shutting down and the client did not take its answers");
      }
    }
  }
  sweep_timer_.cancel();
}

asio::awaitable<void> ClientListener::AcceptTcp() {
  while (!shutting_down_) {
    boost::system::error_code ec;
    asio::ip::tcp::socket socket =
        co_await tcp_acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (shutting_down_) co_return;
    if (ec) {
      spdlog::warn("accepting a TCP client connection failed: {}; retrying", ec.message());
      co_await BackOff();
      continue;
    }
    // Answers are small and latency matters more than packet count; the writer already
    // coalesces what is ready into one write.
    socket.set_option(asio::ip::tcp::no_delay(true), ec);
    std::string peer = TcpPeerName(socket);
    Adopt(Socket(std::move(socket)), std::move(peer));
  }
}

asio::awaitable<void> ClientListener::AcceptUnix() {
  while (!shutting_down_) {
    boost::system::error_code ec;
    asio::local::stream_protocol::socket socket =
        co_await unix_acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (shutting_down_) co_return;
    if (ec) {
      spdlog::warn("accepting a Unix client connection failed: {}; retrying", ec.message());
      co_await BackOff();
      continue;
    }
    Adopt(Socket(std::move(socket)), "unix");
  }
}

void ClientListener::Adopt(Socket socket, std::string peer) {
  if (connections_.size() >= max_connections_) {
    metrics_.ConnectionRefused();
    ++refused_unlogged_;
    asio::co_spawn(executor_, Refuse(std::move(socket)), LogErrors("client refusal"));
    return;
  }
  auto connection = std::make_shared<ClientConnection>(std::move(socket), std::move(peer), handler_,
                                                       metrics_, options_);
  connections_.insert(connection);
  metrics_.ConnectionOpened();
  asio::co_spawn(executor_, connection->Run(), [this, connection](std::exception_ptr error) {
    LogErrors("client connection")(error);
    connections_.erase(connection);
    metrics_.ConnectionClosed();
    if (shutting_down_ && connections_.empty()) drained_.cancel();
  });
}

asio::awaitable<void> ClientListener::Refuse(Socket socket) {
  v1::ClientResponse response;
  response.set_request_id(0);
  response.set_status(v1::RESOURCE_EXHAUSTED);
  response.set_error("the daemon already serves " + std::to_string(connections_.size()) +
                     " client connections, the most its --max-connections allows; reuse "
                     "connections, or raise the limit");
  std::string frame;
  (void)AppendMessageFrame(frame, response, options_.frames);

  // Closing at once could reset the connection before the client read the answer, if it already
  // sent a request; so half-close, and read until it closes too, for at most the linger timeout.
  asio::steady_timer deadline(executor_);
  deadline.expires_after(options_.linger_timeout);
  deadline.async_wait([&socket](const boost::system::error_code& ec) {
    boost::system::error_code ignored;
    if (!ec) socket.close(ignored);
  });
  boost::system::error_code ec;
  // A few dozen bytes into a new socket's empty send buffer: this write completes at once.
  co_await asio::async_write(socket, asio::buffer(frame),
                             asio::redirect_error(asio::use_awaitable, ec));
  socket.shutdown(Socket::shutdown_send, ec);
  char discard[4096];
  while (!ec && socket.is_open()) {
    co_await socket.async_read_some(asio::buffer(discard),
                                    asio::redirect_error(asio::use_awaitable, ec));
  }
  deadline.cancel();
  socket.close(ec);
}

asio::awaitable<void> ClientListener::Sweep() {
  for (;;) {
    sweep_timer_.expires_after(1s);
    boost::system::error_code ec;
    co_await sweep_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (shutting_down_ && connections_.empty()) co_return;
    const auto now = std::chrono::steady_clock::now();
    for (const std::shared_ptr<ClientConnection>& connection : connections_) {
      connection->CheckDeadlines(now);
    }
    if (refused_unlogged_ > 0) {
      spdlog::warn(
          "refused {} client connections in the last second: {} are open, the most "
          "--max-connections allows",
          refused_unlogged_, connections_.size());
      refused_unlogged_ = 0;
    }
  }
}

asio::awaitable<void> ClientListener::BackOff() {
  asio::steady_timer timer(executor_);
  timer.expires_after(100ms);
  boost::system::error_code ignored;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

}  // namespace sessiond
