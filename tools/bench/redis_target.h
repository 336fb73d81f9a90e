// RedisTarget: the workload's session operations sent straight to Redis, with no sidecar, the way
// an app server using Spring Session's RedisSessionRepository stores its sessions — one hash per
// session with a TTL — laid out as sessiond's redis mode lays them out (docs/redis.md: key
// sd:s:<id>, one-letter meta fields, attribute fields ".<name>"), so memory compares too.
//
//   create  HSET key v 1 c <now> a <now> i <idle> .<name> <value>... ; PEXPIRE key <idle ms>
//   read    HGETALL key             (touch: + HSET key a <now> ; PEXPIRE key <idle ms>)
//   write   HSET key .<name> <value> a <now> ; PEXPIRE key <idle ms>
//
// The commands of one operation are pipelined (one write, one round trip), not wrapped in
// MULTI/EXEC: Spring Session and connect-redis issue them without a transaction too, and a
// pipeline is the fastest honest way to send them. Nothing checks that a written session still
// exists (as in those libraries, a write to an expired session re-creates a partial hash).
//
// All the app servers' connections go to the same Redis: `connections_per_node` x `app_servers`
// connections of replication/redis's RedisPool (the project's one Redis client).
//
// Threading: see SessionTarget.
#ifndef SESSIOND_TOOLS_BENCH_REDIS_TARGET_H_
#define SESSIOND_TOOLS_BENCH_REDIS_TARGET_H_

#include <chrono>
#include <cstdint>
#include <random>
#include <string>

#include "replication/redis/redis_pool.h"
#include "replication/redis/redis_session_layout.h"
#include "replication/redis/redis_url.h"
#include "tools/bench/session_target.h"

namespace sessiond::bench {

class RedisTarget final : public SessionTarget {
 public:
  RedisTarget(asio::any_io_executor executor, RedisUrl url, int connections, uint32_t max_idle_s,
              std::chrono::milliseconds request_deadline, uint64_t seed);
  ~RedisTarget() override;

  // A factory for WorkloadDriver: each load thread's target holds connections_per_node x
  // `app_servers` connections. INVALID_ARGUMENT when `redis_url` does not parse.
  static Result<SessionTargetFactory> Factory(const std::string& redis_url, int app_servers,
                                              uint32_t max_idle_s,
                                              std::chrono::milliseconds request_deadline,
                                              uint64_t seed);

  asio::awaitable<Status> Connect() override;
  int connections() const override { return connections_; }
  asio::awaitable<Result<std::string>> Create(uint32_t node, Attributes attributes) override;
  asio::awaitable<Status> Get(uint32_t node, std::string id, bool touch,
                              Attributes* attributes) override;
  asio::awaitable<Status> Set(uint32_t node, std::string id, std::string name,
                              std::string value) override;

 private:
  // 22 URL-safe characters (132 random bits), like sessiond's ids.
  std::string NewId();
  // The status of a pipelined operation: its first failure or error reply, else OK.
  static Status Check(const Result<std::vector<RedisReply>>& replies, const char* what);

  RedisPool pool_;
  RedisSessionLayout layout_;
  int connections_;
  std::string idle_s_;   // max_idle_s as the hash stores it
  std::string idle_ms_;  // the PEXPIRE argument
  std::chrono::milliseconds connect_timeout_;
  bool started_ = false;
  std::mt19937_64 rng_;
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_REDIS_TARGET_H_
