#include "tools/bench/cluster_launcher.h"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tools/bench/free_port.h"
#include "tools/bench/http_get.h"
#include "tools/bench/json_value.h"

namespace sessiond::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kStartAttempts = 3;
constexpr auto kStopGrace = std::chrono::milliseconds(3000);
constexpr auto kPollInterval = std::chrono::milliseconds(10);

Endpoint Loopback(uint16_t port) { return Endpoint{Endpoint::Kind::kTcp, "127.0.0.1", port, ""}; }

std::string PortFilePath(const std::string& dir, int index) {
  return dir + "/n" + std::to_string(index + 1) + ".port";
}

// The daemon's port file: {"pid":N,"client":PORT,"peer":PORT,"admin":PORT,"unix":"..."}.
// nullopt until it exists (the daemon renames it into place whole, so it is never half-written).
std::optional<JsonValue> ReadPortFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  Result<JsonValue> parsed = JsonValue::Parse(text.str());
  if (!parsed.ok() || !parsed->is_object()) return std::nullopt;
  return std::move(*parsed);
}

uint16_t PortField(const JsonValue& file, const char* name) {
  const JsonValue* v = file.Find(name);
  return v != nullptr ? static_cast<uint16_t>(v->as_int64().value_or(0)) : 0;
}

}  // namespace

ClusterLauncher::ClusterLauncher(ClusterOptions options) : options_(std::move(options)) {}

ClusterLauncher::~ClusterLauncher() { Stop(); }

std::vector<std::string> ClusterLauncher::NodeArgs(int index,
                                                   const std::vector<std::string>& peers) const {
  const ClusterNode& node = nodes_[index];
  std::vector<std::string> args = {
      options_.sessiond_binary,
      "--mode",
      options_.mode,
      "--node-id",
      node.node_id,
      "--listen",
      "127.0.0.1:0",
      "--admin-listen",
      "127.0.0.1:0",
      "--peer-listen",
      "127.0.0.1:" + std::to_string(node.peer_port),
      "--port-file",
      PortFilePath(options_.work_dir, index),
      "--log-level",
      options_.log_level,
  };
  if (!peers.empty()) {
    std::string list;
    for (const auto& p : peers) list += (list.empty() ? "" : ",") + p;
    args.insert(args.end(), {"--peers", list});
  }
  if (!node_redis_url_.empty()) args.insert(args.end(), {"--redis", node_redis_url_});
  if (!options_.replication_ack.empty() && clustered()) {
    args.insert(args.end(), {"--replication-ack", options_.replication_ack});
  }
  if (options_.backups && options_.mode == "backup") {
    args.insert(args.end(), {"--backups", std::to_string(*options_.backups)});
  }
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  return args;
}

Status ClusterLauncher::Start() {
  if (started_) return Status::Ok();
  started_ = true;
  if (options_.nodes < 1) return InvalidArgument("a cluster needs at least one node");
  if (options_.peer_link || options_.redis_link) {
    proxy_work_.emplace(proxy_io_.get_executor());
    proxy_thread_ = std::thread([this] { proxy_io_.run(); });
  }

  if (options_.mode == "redis" || options_.mode == "redis-direct") {
    if (options_.redis_url.empty()) {
      RedisServerOptions redis_options;
      redis_options.binary = options_.redis_binary;
      redis_options.dir = options_.work_dir + "/redis";
      std::error_code ec;
      std::filesystem::create_directories(redis_options.dir, ec);
      Result<std::unique_ptr<RedisServer>> redis = RedisServer::Start(redis_options);
      if (!redis.ok()) {
        Stop();
        return redis.status();
      }
      redis_ = std::move(*redis);
      node_redis_url_ = redis_->url();
      if (options_.redis_link) {
        DelayProxyOptions proxy_options;
        proxy_options.target =
            asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), redis_->port());
        proxy_options.to_target = *options_.redis_link;
        proxy_options.to_client = *options_.redis_link;
        Result<std::unique_ptr<DelayProxy>> proxy = DelayProxy::Create(proxy_io_, proxy_options);
        if (!proxy.ok()) {
          Stop();
          return proxy.status();
        }
        redis_proxy_ = std::move(*proxy);
        node_redis_url_ = "redis://127.0.0.1:" + std::to_string(redis_proxy_->port()) + "/0";
      }
    } else {
      // Someone else's Redis: used as given (a proxy in front of it is not supported).
      node_redis_url_ = options_.redis_url;
    }
  }

  // redis-direct: the app servers talk to Redis themselves; there is no sessiond to start.
  if (options_.mode == "redis-direct") return Status::Ok();

  Status status;
  for (int attempt = 1; attempt <= kStartAttempts; ++attempt) {
    status = StartNodes();
    if (status.ok()) return status;
    StopNodes();
    peer_proxies_.clear();
    // Only a port taken between pick and bind is worth another try.
    if (status.message().find("in use") == std::string::npos) break;
  }
  Stop();
  return status;
}

Status ClusterLauncher::StartNodes() {
  const int n = options_.nodes;
  nodes_.assign(n, ClusterNode{});
  processes_.clear();
  processes_.resize(n);
  std::vector<uint16_t> peer_ports(n, 0);
  if (clustered()) {
    Result<std::vector<uint16_t>> ports = PickFreePorts(n);
    if (!ports.ok()) return ports.status();
    peer_ports = *ports;
  }

  std::vector<std::vector<std::string>> peers(n);
  if (clustered() && n > 1) {
    if (options_.peer_link) {
      peer_proxies_.clear();
      peer_proxies_.resize(n);
    }
    for (int from = 0; from < n; ++from) {
      if (options_.peer_link) peer_proxies_[from].resize(n);
      for (int to = 0; to < n; ++to) {
        if (from == to) continue;
        uint16_t port = peer_ports[to];
        if (options_.peer_link) {
          DelayProxyOptions proxy_options;
          proxy_options.target =
              asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), peer_ports[to]);
          proxy_options.to_target = *options_.peer_link;
          proxy_options.to_client = *options_.peer_link;
          proxy_options.seed = static_cast<uint64_t>(from * n + to + 1);
          Result<std::unique_ptr<DelayProxy>> proxy = DelayProxy::Create(proxy_io_, proxy_options);
          if (!proxy.ok()) return proxy.status();
          peer_proxies_[from][to] = std::move(*proxy);
          port = peer_proxies_[from][to]->port();
        }
        peers[from].push_back("127.0.0.1:" + std::to_string(port));
      }
    }
  }

  for (int i = 0; i < n; ++i) {
    ClusterNode& node = nodes_[i];
    node.index = i;
    node.node_id = "n" + std::to_string(i + 1);
    node.peer_port = peer_ports[i];
    node.log_path = options_.work_dir + "/" + node.node_id + ".log";
    std::error_code ec;
    std::filesystem::remove(PortFilePath(options_.work_dir, i), ec);
    Result<std::unique_ptr<ChildProcess>> child =
        ChildProcess::Spawn(NodeArgs(i, peers[i]), node.log_path);
    if (!child.ok()) return child.status();
    processes_[i] = std::move(*child);
    node.pid = processes_[i]->pid();
    node.alive = true;
  }

  const auto until = Clock::now() + options_.start_timeout;
  for (int i = 0; i < n; ++i) {
    if (Status status = WaitUntilReady(i, until); !status.ok()) return status;
  }
  return Status::Ok();
}

Status ClusterLauncher::WaitUntilReady(int index, Clock::time_point until) {
  ClusterNode& node = nodes_[index];
  ChildProcess& process = *processes_[index];
  std::string last_answer = "no port file yet";
  for (;;) {
    if (!process.Running()) {
      node.alive = false;
      return Unavailable("node " + node.node_id + " " +
                         process.ExitDescription().value_or("exited") + ": " + process.LogTail(3));
    }
    if (node.admin.port == 0) {
      if (auto file = ReadPortFile(PortFilePath(options_.work_dir, index))) {
        node.client = Loopback(PortField(*file, "client"));
        node.admin = Loopback(PortField(*file, "admin"));
        if (const uint16_t peer = PortField(*file, "peer"); peer != 0) node.peer_port = peer;
        last_answer = "no answer on /readyz yet";
      }
    }
    if (node.admin.port != 0) {
      Result<HttpResponse> ready = HttpGet(node.admin, "/readyz", std::chrono::milliseconds(500));
      if (ready.ok() && ready->status == 200) return Status::Ok();
      last_answer = ready.ok() ? "/readyz answered " + std::to_string(ready->status) + " " +
                                     ready->body.substr(0, 120)
                               : ready.status().message();
    }
    if (Clock::now() >= until) {
      return Unavailable("node " + node.node_id + " was not ready within " +
                         std::to_string(options_.start_timeout.count()) + " ms (" + last_answer +
                         "); its log is " + node.log_path);
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

Status ClusterLauncher::Kill(int index) {
  if (index < 0 || index >= static_cast<int>(nodes_.size()) || !processes_[index]) {
    return InvalidArgument("no node " + std::to_string(index + 1) + " in this cluster");
  }
  processes_[index]->Signal(SIGKILL);
  if (!processes_[index]->WaitForExit(std::chrono::milliseconds(5000))) {
    return Internal("node " + nodes_[index].node_id + " did not die after SIGKILL");
  }
  nodes_[index].alive = false;
  return Status::Ok();
}

void ClusterLauncher::StopNodes() {
  // Signal all first, so they shut down in parallel, then wait for each.
  for (auto& p : processes_) {
    if (p) p->Signal(SIGTERM);
  }
  for (auto& p : processes_) {
    if (p) p->Stop(kStopGrace);
  }
  processes_.clear();
  for (auto& node : nodes_) node.alive = false;
}

void ClusterLauncher::StopProxies() {
  redis_proxy_.reset();
  peer_proxies_.clear();
  if (proxy_thread_.joinable()) {
    proxy_work_.reset();
    proxy_io_.stop();
    proxy_thread_.join();
  }
}

void ClusterLauncher::Stop() {
  StopNodes();
  StopProxies();
  redis_.reset();
}

std::optional<uint64_t> ClusterLauncher::ResidentBytes(int index) const {
  if (index < 0 || index >= static_cast<int>(processes_.size()) || !processes_[index]) {
    return std::nullopt;
  }
  return processes_[index]->ResidentBytes();
}

std::optional<uint64_t> ClusterLauncher::RedisResidentBytes() const {
  if (!redis_) return std::nullopt;
  return redis_->process().ResidentBytes();
}

std::optional<double> ClusterLauncher::CpuSeconds(int index) const {
  if (index < 0 || index >= static_cast<int>(processes_.size()) || !processes_[index]) {
    return std::nullopt;
  }
  return processes_[index]->CpuSeconds();
}

std::optional<double> ClusterLauncher::RedisCpuSeconds() const {
  if (!redis_) return std::nullopt;
  return redis_->process().CpuSeconds();
}

std::string ClusterLauncher::direct_redis_url() const { return redis_ ? redis_->url() : ""; }

uint16_t ClusterLauncher::direct_redis_port() const { return redis_ ? redis_->port() : 0; }

DelayProxy* ClusterLauncher::peer_proxy(int from, int to) const {
  if (from < 0 || from >= static_cast<int>(peer_proxies_.size())) return nullptr;
  if (to < 0 || to >= static_cast<int>(peer_proxies_[from].size())) return nullptr;
  return peer_proxies_[from][to].get();
}

}  // namespace sessiond::bench
