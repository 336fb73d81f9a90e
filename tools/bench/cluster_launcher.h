// ClusterLauncher: a local sessiond cluster of one mode, started and owned by the bench.
//
// Start() runs, in order:
//   1. a redis-server of its own (redis mode, unless a Redis URL is given), optionally behind a
//      DelayProxy (the Redis link);
//   2. for clustered modes (delta, backup), a free peer port per node, picked by bind-and-release
//      since every node's --peers must name the others before they start, and, when peer links are
//      delayed, one DelayProxy per ordered pair of nodes (node j reaches node i through proxy j->i,
//      so each direction of each link has its own shape and can be cut on its own);
//   3. N sessiond processes with --port-file in the work directory, each then waited for: its port
//      file (written once it listens) and /readyz answering 200.
// A node that exits early makes Start() fail with UNAVAILABLE and the tail of its log (for a mode
// not in this build: "mode X is not available in this build yet"), which the bench reports as the
// mode's row. A peer port taken by someone else between pick and bind is retried with new ports.
//
// Everything started is stopped by Stop() or the destructor. The nodes also die with the bench
// itself (ChildProcess's death signal), so even kill -9 of the bench leaves nothing running.
//
// Threading: one owner (the bench's main thread). The proxies run on a thread of the launcher's.
#ifndef SESSIOND_TOOLS_BENCH_CLUSTER_LAUNCHER_H_
#define SESSIOND_TOOLS_BENCH_CLUSTER_LAUNCHER_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sessiond/asio.h"
#include "sessiond/endpoint.h"
#include "sessiond/status.h"
#include "tools/bench/child_process.h"
#include "tools/bench/delay_proxy.h"
#include "tools/bench/link_schedule.h"
#include "tools/bench/redis_server.h"

namespace sessiond::bench {

struct ClusterOptions {
  std::string sessiond_binary = "sessiond";
  std::string redis_binary = "redis-server";
  // sessiond's --mode: standalone | delta | backup | redis, or redis-direct: only the
  // redis-server (and its proxy), no sessiond nodes; `nodes` is then the number of app servers
  // sharing it. (Variants such as redis-nc are a mode plus extra_args: see BenchMode.)
  std::string mode = "standalone";
  int nodes = 3;
  // Passed through when set: --replication-ack, --backups.
  std::string replication_ack;
  std::optional<int> backups;
  // Redis for redis mode; "" = start a redis-server of our own.
  std::string redis_url;
  // Network shape of each peer link direction and of the Redis link; nullopt = no proxy at all.
  std::optional<LinkShape> peer_link;
  std::optional<LinkShape> redis_link;
  // Holds port files, logs and redis data. Must exist.
  std::string work_dir;
  std::string log_level = "warn";
  std::chrono::milliseconds start_timeout{30'000};
  // More flags for every node.
  std::vector<std::string> extra_args;
};

// One node as started.
struct ClusterNode {
  int index = 0;
  std::string node_id;  // "n1", "n2", ...
  pid_t pid = 0;
  Endpoint client;
  Endpoint admin;
  uint16_t peer_port = 0;
  std::string log_path;
  bool alive = false;  // false once killed or stopped
};

class ClusterLauncher {
 public:
  explicit ClusterLauncher(ClusterOptions options);
  ~ClusterLauncher();
  ClusterLauncher(const ClusterLauncher&) = delete;
  ClusterLauncher& operator=(const ClusterLauncher&) = delete;

  // Starts everything and waits until every node is ready (see the header comment). On failure
  // everything already started is stopped again.
  Status Start();

  const std::vector<ClusterNode>& nodes() const { return nodes_; }
  bool clustered() const { return options_.mode == "delta" || options_.mode == "backup"; }
  const ClusterOptions& options() const { return options_; }

  // kill -9 of node `index`; waits until it has exited. Its peer links' proxies stay up (a
  // restarted node would listen behind them again).
  Status Kill(int index);

  // Stops every node (SIGTERM, then SIGKILL after a grace period), the proxies and redis-server.
  // Idempotent.
  void Stop();

  // Resident memory of node `index` (nullopt when not running).
  std::optional<uint64_t> ResidentBytes(int index) const;
  // Resident memory of our redis-server (nullopt when we started none).
  std::optional<uint64_t> RedisResidentBytes() const;
  // CPU seconds node `index` (resp. our redis-server) has used so far; nullopt when not running.
  std::optional<double> CpuSeconds(int index) const;
  std::optional<double> RedisCpuSeconds() const;
  // The URL nodes use for Redis (through the proxy when the Redis link is delayed); "" if none.
  const std::string& redis_url() const { return node_redis_url_; }
  // Our own redis-server's URL, bypassing any proxy; "" if we started none.
  std::string direct_redis_url() const;
  // Our own redis-server's port, bypassing any proxy; 0 if we started none.
  uint16_t direct_redis_port() const;

  // The proxy carrying node `from`'s connections to node `to` (nullptr when links are not
  // proxied), e.g. to cut one direction of one link.
  DelayProxy* peer_proxy(int from, int to) const;
  DelayProxy* redis_proxy() const { return redis_proxy_.get(); }

 private:
  // One attempt at starting the nodes with freshly picked peer ports.
  Status StartNodes();
  Status WaitUntilReady(int index, std::chrono::steady_clock::time_point until);
  std::vector<std::string> NodeArgs(int index, const std::vector<std::string>& peers) const;
  void StopNodes();
  void StopProxies();

  ClusterOptions options_;
  asio::io_context proxy_io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> proxy_work_;
  std::thread proxy_thread_;

  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<DelayProxy> redis_proxy_;
  std::string node_redis_url_;
  // peer_proxies_[from][to]; empty when peer links are not proxied.
  std::vector<std::vector<std::unique_ptr<DelayProxy>>> peer_proxies_;
  std::vector<std::unique_ptr<ChildProcess>> processes_;
  std::vector<ClusterNode> nodes_;
  bool started_ = false;
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_CLUSTER_LAUNCHER_H_
