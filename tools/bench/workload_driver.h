// WorkloadDriver: the benchmark workload against a SessionTarget: sessiond nodes through
// sessiond::AsyncClient (SessiondTarget), or Redis used directly (RedisTarget, via
// RedisDirectDriver).
//
// Each of `threads` load threads runs its own io_context and its own target holding, for every
// node, its share of the `connections` per node (both targets pipeline concurrent calls on one
// connection). A thread owns a slice of the sessions (shared-nothing: no locks while measuring);
// the sessions it creates during the run join its slice.
//
// Closed loop: connections x nodes workers in all, each sending its next request when the previous
// one is answered; latency is measured from the send. Open loop (`rate` > 0): each thread sends at
// fixed intervals whatever the answers do, pipelining as needed, and measures latency from the
// *intended* send time, so a stall is charged to every request it delayed (no coordinated
// omission).
//
// Routing: a request goes to its session's home node with probability `sticky`, to a uniformly
// chosen node otherwise (SessiondTarget says how a dead node's connections move on).
//
// Threading: see LoadDriver (blocking calls from one thread; the load threads live inside).
#ifndef SESSIOND_TOOLS_BENCH_WORKLOAD_DRIVER_H_
#define SESSIOND_TOOLS_BENCH_WORKLOAD_DRIVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sessiond/endpoint.h"
#include "tools/bench/load_driver.h"
#include "tools/bench/session_target.h"
#include "tools/bench/workload_options.h"

namespace sessiond::bench {

class WorkloadDriver final : public LoadDriver {
 public:
  // `nodes` are the client endpoints of the nodes; a session's home is an index into it.
  WorkloadDriver(std::vector<Endpoint> nodes, WorkloadOptions options);
  // Drives any target: `node_count` app servers, each load thread's target made by `factory`.
  WorkloadDriver(int node_count, SessionTargetFactory factory, WorkloadOptions options);
  ~WorkloadDriver() override;

  Status Populate(RunProgress& progress) override;
  Result<WorkloadResult> Run(RunProgress& progress) override;
  LostWriteLedger::Verdict VerifyWrites(const LostWriteLedger& ledger,
                                        const std::vector<bool>& alive_nodes) override;

  // Sessions the load threads know: the initial ones plus those created during the run.
  size_t session_count() const;

  class LoadThread;  // one load thread's state; defined in the .cc

 private:
  int node_count_;
  SessionTargetFactory factory_;
  WorkloadOptions options_;
  std::vector<std::unique_ptr<LoadThread>> threads_;
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_WORKLOAD_DRIVER_H_
