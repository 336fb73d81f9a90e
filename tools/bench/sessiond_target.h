// SessiondTarget: the workload's session operations against sessiond nodes, through
// sessiond::AsyncClient (a pool of clients per node, used round-robin; each pipelines).
//
// Routing: a client of node k lists node k first and then the others, so after a node dies its
// connections move to the next node, as a load balancer would send the users there.
//
// Threading: see SessionTarget.
#ifndef SESSIOND_TOOLS_BENCH_SESSIOND_TARGET_H_
#define SESSIOND_TOOLS_BENCH_SESSIOND_TARGET_H_

#include <chrono>
#include <memory>
#include <vector>

#include "sessiond/async_client.h"
#include "sessiond/endpoint.h"
#include "tools/bench/session_target.h"

namespace sessiond::bench {

class SessiondTarget final : public SessionTarget {
 public:
  SessiondTarget(asio::any_io_executor executor, const std::vector<Endpoint>& nodes,
                 int connections_per_node, uint32_t max_idle_s,
                 std::chrono::milliseconds request_deadline);

  // A factory for WorkloadDriver.
  static SessionTargetFactory Factory(std::vector<Endpoint> nodes, uint32_t max_idle_s,
                                      std::chrono::milliseconds request_deadline);

  asio::awaitable<Status> Connect() override;
  int connections() const override;
  asio::awaitable<Result<std::string>> Create(uint32_t node, Attributes attributes) override;
  asio::awaitable<Status> Get(uint32_t node, std::string id, bool touch,
                              Attributes* attributes) override;
  asio::awaitable<Status> Set(uint32_t node, std::string id, std::string name,
                              std::string value) override;

 private:
  AsyncClient& ClientFor(uint32_t node);

  uint32_t max_idle_s_;
  std::vector<std::vector<std::unique_ptr<AsyncClient>>> clients_;  // [node][k]
  std::vector<size_t> next_client_;  // per node: round-robin over its pool
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_SESSIOND_TARGET_H_
