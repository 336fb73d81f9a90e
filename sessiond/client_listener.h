// ClientListener: accepts client connections on TCP and Unix sockets and keeps the registry of
// live ones, so that shutdown can close them explicitly (as the Asio HTTP server example's
// connection_manager does).
//
// It enforces --max-connections (one over the limit is answered RESOURCE_EXHAUSTED with
// request_id 0 and closed) and runs, once a second, the sweep that enforces every connection's
// write and frame deadlines.
//
// Threading: belongs to the daemon's event loop; every method is called there.
#ifndef SESSIOND_SESSIOND_CLIENT_LISTENER_H_
#define SESSIOND_SESSIOND_CLIENT_LISTENER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include "sessiond/asio.h"
#include "sessiond/client_connection.h"
#include "sessiond/endpoint.h"
#include "sessiond/metrics.h"
#include "sessiond/request_handler.h"
#include "sessiond/status.h"

namespace sessiond {

class ClientListener {
 public:
  // `handler` and `metrics` must outlive the listener.
  ClientListener(asio::any_io_executor executor, RequestHandler& handler, Metrics& metrics,
                 ConnectionOptions options, size_t max_connections);
  ~ClientListener();
  ClientListener(const ClientListener&) = delete;
  ClientListener& operator=(const ClientListener&) = delete;

  // Binds and listens on a TCP endpoint (port 0 picks a free port). Returns the bound port, or
  // UNAVAILABLE with a sentence naming the address and the system's reason. Call before Start().
  Result<uint16_t> ListenTcp(const Endpoint& endpoint);
  // Binds and listens on a Unix socket at `path`. A stale socket file is replaced; a live one
  // (another process accepts on it) or a file that is not a socket is an error. The file is
  // removed again by Shutdown(). Call before Start().
  Status ListenUnix(const std::string& path);

  // Starts accepting on every bound socket and the deadline sweep.
  void Start();

  // Stops accepting, removes the Unix socket file, drains every connection (requests already read
  // are answered) and completes once none is left. Connections still open after a few seconds
  // (their clients do not read) are closed.
  asio::awaitable<void> Shutdown();

  size_t connection_count() const { return connections_.size(); }

 private:
  using Socket = ClientConnection::Socket;

  asio::awaitable<void> AcceptTcp();
  asio::awaitable<void> AcceptUnix();
  // Registers and runs a newly accepted connection, or refuses it when at the limit.
  void Adopt(Socket socket, std::string peer);
  asio::awaitable<void> Refuse(Socket socket);
  asio::awaitable<void> Sweep();
  // After an accept error other than shutdown (e.g. out of file descriptors): wait a little
  // rather than spin on an error that persists.
  asio::awaitable<void> BackOff();

  asio::any_io_executor executor_;
  RequestHandler& handler_;
  Metrics& metrics_;
  const ConnectionOptions options_;
  const size_t max_connections_;

  asio::ip::tcp::acceptor tcp_acceptor_;
  asio::local::stream_protocol::acceptor unix_acceptor_;
  std::string unix_path_;  // "" when not listening on a Unix socket
  std::unordered_set<std::shared_ptr<ClientConnection>> connections_;
  asio::steady_timer sweep_timer_;
  asio::steady_timer drained_;  // cancelled when the last connection ends during shutdown
  bool shutting_down_ = false;
  uint64_t refused_unlogged_ = 0;  // refusals since the sweep last logged them
};

}  // namespace sessiond

#endif  // SESSIOND_SESSIOND_CLIENT_LISTENER_H_
