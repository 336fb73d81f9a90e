// AdminServer: the daemon's admin HTTP endpoint (Boost.Beast, HTTP/1.1, on the daemon's loop).
//
//   GET /healthz  200 "ok": the process is alive and its loop turns.
//   GET /readyz   200 when the manager is ready (joined, caught up), else 503; the body says why.
//   GET /metrics  the Prometheus text format: Metrics plus the manager's Stats().
//   GET /cluster  JSON: this node (id, mode, incarnation, ports, session counters) and the
//                 members it sees, with their link state, queue depth and replication lag.
//   GET /digest   JSON: the content digest of the sessions this node holds (sessionctl digest),
//                 so that convergence of replicas can be checked from outside.
//
// Unknown paths are 404, other methods 405. Every read and write has a deadline, and at most
// kMaxConnections admin connections are open at once (more are closed at accept).
//
// Threading: belongs to the daemon's event loop; every method is called there.
#ifndef SESSIOND_SESSIOND_ADMIN_SERVER_H_
#define SESSIOND_SESSIOND_ADMIN_SERVER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "replication/cluster/cluster.h"
#include "replication/session_manager.h"
#include "sessiond/asio.h"
#include "sessiond/endpoint.h"
#include "sessiond/metrics.h"
#include "sessiond/status.h"

namespace sessiond {

// What /cluster says about this node.
struct NodeInfo {
  std::string node_id;
  std::string mode;
  uint64_t incarnation = 0;    // changes at every start
  std::string client_address;  // "127.0.0.1:7400"
  uint16_t client_port = 0;
  uint16_t peer_port = 0;  // 0 when the mode has no peer listener
  uint16_t admin_port = 0;
  std::string unix_path;  // "" when there is no Unix socket
};

// An HTTP answer, as the router builds it.
struct AdminResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class AdminServer {
 public:
  static constexpr size_t kMaxConnections = 64;

  // `manager` and `metrics` must outlive the server.
  AdminServer(asio::any_io_executor executor, SessionManager& manager, const Metrics& metrics);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and listens (port 0 picks a free port). Returns the bound port or UNAVAILABLE.
  Result<uint16_t> Listen(const Endpoint& endpoint);
  // What /cluster reports about this node; set once the listeners are bound.
  void SetNodeInfo(NodeInfo info) { node_ = std::move(info); }
  // The cluster of a clustered mode (not owned; must outlive the server): /cluster lists its
  // members and links, /metrics adds its peer and membership families. Without one, /cluster
  // lists only this node.
  void SetCluster(const Cluster* cluster) { cluster_ = cluster; }

  // Starts accepting.
  void Start();
  // Stops accepting and closes every admin connection; their coroutines end soon after.
  void Stop();

  // The answer to `method` `target` (e.g. "GET", "/metrics?x=1"). Public so tests can check the
  // routes without a socket.
  AdminResponse Route(std::string_view method, std::string_view target) const;

 private:
  asio::awaitable<void> Accept();
  asio::awaitable<void> Serve(asio::ip::tcp::socket socket);
  std::string ClusterJson() const;
  AdminResponse DigestResponse() const;

  asio::any_io_executor executor_;
  SessionManager& manager_;
  const Metrics& metrics_;
  NodeInfo node_;
  const Cluster* cluster_ = nullptr;
  asio::ip::tcp::acceptor acceptor_;
  // The sockets of open admin connections, so Stop() can close them. Owned by Serve's frames.
  std::unordered_set<asio::ip::tcp::socket*> open_;
  bool stopped_ = false;
};

}  // namespace sessiond

#endif  // SESSIOND_SESSIOND_ADMIN_SERVER_H_
