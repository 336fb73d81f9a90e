// RedisServer: a redis-server process of the bench's own, for the redis mode and redis-direct.
//
// Runs on 127.0.0.1 on a free port, with persistence off (the comparison measures the session
// layer, not fsync), keyspace notifications for expiry on (redis mode listens to them), and its
// data and log in the given directory. Stopped (SIGTERM, then SIGKILL) when destroyed.
//
// Threading: one owner (the bench's main thread).
#ifndef SESSIOND_TOOLS_BENCH_REDIS_SERVER_H_
#define SESSIOND_TOOLS_BENCH_REDIS_SERVER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "sessiond/status.h"
#include "tools/bench/child_process.h"

namespace sessiond::bench {

struct RedisServerOptions {
  std::string binary = "redis-server";
  // Holds redis.log and any dump; must exist.
  std::string dir;
  std::chrono::milliseconds start_timeout{10'000};
};

class RedisServer {
 public:
  // Starts redis-server and waits until it answers PING. UNAVAILABLE with the log's tail when it
  // exits or does not answer in time (the bench reports the mode as unavailable then).
  static Result<std::unique_ptr<RedisServer>> Start(const RedisServerOptions& options);

  ~RedisServer();

  uint16_t port() const { return port_; }
  // "redis://127.0.0.1:PORT/0", the form sessiond's --redis takes.
  std::string url() const;
  ChildProcess& process() { return *process_; }

  // True when a PING is answered with PONG within `timeout`.
  static bool Ping(uint16_t port, std::chrono::milliseconds timeout);

 private:
  RedisServer(std::unique_ptr<ChildProcess> process, uint16_t port)
      : process_(std::move(process)), port_(port) {}

  std::unique_ptr<ChildProcess> process_;
  uint16_t port_;
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_REDIS_SERVER_H_
