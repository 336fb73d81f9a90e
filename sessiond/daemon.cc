#include "sessiond/daemon.h"

#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "replication/log_errors.h"
#include "sessiond/manager_factory.h"

namespace sessiond {
namespace {

std::string JsonQuoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

void SetUpLogging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("sessiond");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ %v");
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace

Daemon::Daemon(DaemonConfig config)
    // A concurrency hint of 1 tells Asio that one thread runs the loop, which spares it locking.
    : config_(std::move(config)), io_(1), signals_(io_, SIGINT, SIGTERM) {
  connection_options_.frames.max_frame_bytes = config_.max_frame_bytes;
  connection_options_.max_inflight = config_.max_inflight_per_connection;
}

Daemon::~Daemon() = default;

int Daemon::Run() {
  if (!spdlog::get("sessiond")) SetUpLogging(config_.log_level);
  // Asio sends with MSG_NOSIGNAL, but a write to a closed peer must never kill the daemon.
  ::signal(SIGPIPE, SIG_IGN);
  incarnation_ = Cluster::NewIncarnation();

  Result<ModeRuntime> runtime =
      MakeModeRuntime(config_, io_.get_executor(), clock_, ids_, incarnation_);
  if (!runtime.ok()) {
    spdlog::error("cannot start: {}", runtime.status().message());
    return 1;
  }
  runtime_ = std::move(runtime).value();
  SessionManager& manager = *runtime_.manager;
  handler_ = std::make_unique<RequestHandler>(manager, &metrics_);
  listener_ = std::make_unique<ClientListener>(io_.get_executor(), *handler_, metrics_,
                                               connection_options_, config_.max_connections);
  admin_ = std::make_unique<AdminServer>(io_.get_executor(), manager, metrics_);
  admin_->SetCluster(runtime_.cluster.get());
  if (Status status = Bind(); !status.ok()) {
    spdlog::error("cannot start: {}", status.message());
    return 1;
  }

  asio::co_spawn(io_, Serve(), LogErrors("daemon"));
  io_.run();
  return exit_code_;
}

Status Daemon::Bind() {
  Result<uint16_t> client_port = listener_->ListenTcp(config_.listen);
  if (!client_port.ok()) return client_port.status();
  client_port_ = *client_port;
  if (!config_.unix_path.empty()) {
    if (Status status = listener_->ListenUnix(config_.unix_path); !status.ok()) return status;
  }
  Result<uint16_t> admin_port = admin_->Listen(config_.admin_listen);
  if (!admin_port.ok()) return admin_port.status();
  admin_port_ = *admin_port;
  if (runtime_.cluster) {
    // Binds the peer listener and starts dialing --peers; the manager joins in Serve().
    if (Status status = runtime_.cluster->Start(); !status.ok()) return status;
    peer_port_ = runtime_.cluster->listen_endpoint().port;
  }

  NodeInfo node;
  node.node_id = config_.node_id;
  node.mode = std::string(runtime_.manager->mode());
  node.incarnation = incarnation_;
  node.client_address =
      Endpoint{Endpoint::Kind::kTcp, config_.listen.host, client_port_, ""}.ToString();
  node.client_port = client_port_;
  node.peer_port = peer_port_;
  node.admin_port = admin_port_;
  node.unix_path = config_.unix_path;
  admin_->SetNodeInfo(std::move(node));
  return Status::Ok();
}

asio::awaitable<void> Daemon::Serve() {
  if (Status status = co_await runtime_.manager->Start(); !status.ok()) {
    spdlog::error("cannot start the {} session manager: {}", runtime_.manager->mode(),
                  status.message());
    exit_code_ = 1;
    co_await Shutdown();
    co_return;
  }
  listener_->Start();
  admin_->Start();
  if (!config_.port_file.empty()) {
    if (Status status = WritePortFile(); !status.ok()) {
      spdlog::error("cannot start: {}", status.message());
      exit_code_ = 1;
      co_await Shutdown();
      co_return;
    }
  }
  spdlog::info("sessiond node {} ({} mode, incarnation {}, pid {}) serving clients on {}:{}{}{}",
               config_.node_id, runtime_.manager->mode(), incarnation_, ::getpid(),
               config_.listen.host, client_port_,
               config_.unix_path.empty() ? "" : " and unix:", config_.unix_path);
  if (runtime_.cluster) {
    spdlog::info("peer links on {}:{} (cluster {}, seeds: {})", config_.peer_listen.host,
                 peer_port_, config_.cluster_name,
                 config_.peers.empty() ? std::string("none, first node") : PeerList());
  }
  spdlog::info("admin HTTP on http://{}:{}/ (healthz, readyz, metrics, cluster, digest)",
               config_.admin_listen.host, admin_port_);

  boost::system::error_code ec;
  const int signal = co_await signals_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  spdlog::info("received {}; shutting down (send it again to exit at once)",
               signal == SIGTERM ? "SIGTERM" : "SIGINT");
  asio::co_spawn(io_, ForceExitOnSecondSignal(), LogErrors("signal watch"));
  co_await Shutdown();
  spdlog::info("sessiond node {} stopped", config_.node_id);
}

asio::awaitable<void> Daemon::Shutdown() {
  shutting_down_ = true;
  admin_->Stop();
  co_await listener_->Shutdown();
  // The manager hands off what it must while the peer links are up; then say goodbye.
  co_await runtime_.manager->Stop();
  if (runtime_.cluster) co_await runtime_.cluster->Leave("the node is shutting down");
  boost::system::error_code ignored;
  signals_.cancel(ignored);
}

asio::awaitable<void> Daemon::ForceExitOnSecondSignal() {
  boost::system::error_code ec;
  co_await signals_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;  // shutdown finished first
  spdlog::warn("second signal during shutdown: exiting at once");
  spdlog::shutdown();
  std::_Exit(1);
}

std::string Daemon::PeerList() const {
  std::string out;
  for (const Endpoint& peer : config_.peers) {
    if (!out.empty()) out += ",";
    out += peer.ToString();
  }
  return out;
}

Status Daemon::WritePortFile() const {
  const std::string temporary = config_.port_file + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << "{\"pid\":" << ::getpid() << ",\"client\":" << client_port_ << ",\"peer\":" << peer_port_
        << ",\"admin\":" << admin_port_ << ",\"unix\":" << JsonQuoted(config_.unix_path) << "}\n";
    out.flush();
    if (!out) {
      return Unavailable("cannot write --port-file " + temporary + ": " + std::strerror(errno) +
                         "; check that its directory exists and is writable");
    }
  }
  if (std::rename(temporary.c_str(), config_.port_file.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(temporary.c_str());
    return Unavailable("cannot move the port file into place at " + config_.port_file + ": " +
                       reason);
  }
  return Status::Ok();
}

}  // namespace sessiond
