// Daemon: one sessiond process, wired together.
//
// One io_context, run by the thread that calls Run(), owns everything: the session manager of the
// configured mode and, in delta and backup mode, the Cluster it replicates through (peer links,
// membership); the client listener (TCP and optionally a Unix socket); and the admin HTTP server.
// SIGTERM or SIGINT starts a graceful shutdown: stop accepting, answer what was already read,
// close connections, stop the manager (backup mode hands its sessions over here, while the peer
// links are still up), leave the cluster, remove the Unix socket file; then Run() returns 0. A
// second signal during shutdown exits at once.
//
// Startup order: build the mode's runtime, bind every listener (port 0 picks one) and the peer
// listener, start the manager, start accepting, then write --port-file, so that a process that
// waits for that file can connect.
#ifndef SESSIOND_SESSIOND_DAEMON_H_
#define SESSIOND_SESSIOND_DAEMON_H_

#include <cstdint>
#include <memory>
#include <string>

#include "replication/clock.h"
#include "replication/session_id.h"
#include "replication/session_manager.h"
#include "sessiond/admin_server.h"
#include "sessiond/asio.h"
#include "sessiond/client_listener.h"
#include "sessiond/config.h"
#include "sessiond/manager_factory.h"
#include "sessiond/metrics.h"
#include "sessiond/request_handler.h"
#include "sessiond/status.h"

namespace sessiond {

class Daemon {
 public:
  explicit Daemon(DaemonConfig config);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Serves until SIGTERM or SIGINT. Returns the process exit code: 0 after a graceful shutdown,
  // 1 when the daemon could not start (the reason is logged). Call once, from the thread that is
  // to run the event loop.
  int Run();

 private:
  // Binds every listener; fills the port fields.
  Status Bind();
  asio::awaitable<void> Serve();
  asio::awaitable<void> Shutdown();
  // Exits the process at once on a second signal, for an operator whose shutdown hangs.
  asio::awaitable<void> ForceExitOnSecondSignal();
  // {"pid":N,"client":PORT,"peer":PORT,"admin":PORT,"unix":"PATH"}, written to a temporary file
  // and renamed into place so that a reader never sees half of it.
  Status WritePortFile() const;
  // --peers as "host:port,host:port", for the log.
  std::string PeerList() const;

  const DaemonConfig config_;
  // Declared first so that it is destroyed last, after every object that holds its executor.
  asio::io_context io_;
  SystemClock clock_;
  RandomIdGenerator ids_;
  Metrics metrics_;
  ConnectionOptions connection_options_;
  // The mode's cluster (clustered modes only) and manager; the cluster outlives the manager.
  ModeRuntime runtime_;
  std::unique_ptr<RequestHandler> handler_;
  std::unique_ptr<ClientListener> listener_;
  std::unique_ptr<AdminServer> admin_;
  asio::signal_set signals_;

  uint64_t incarnation_ = 0;
  uint16_t client_port_ = 0;
  uint16_t peer_port_ = 0;
  uint16_t admin_port_ = 0;
  bool shutting_down_ = false;
  int exit_code_ = 0;
};

}  // namespace sessiond

#endif  // SESSIOND_SESSIOND_DAEMON_H_
