// RedisDirectDriver: the benchmark workload sent straight to Redis, with no sidecar, as an app
// using Spring Session's Redis repository (or connect-redis) stores sessions. The commands are
// RedisTarget's; the load itself (threads, closed or open loop, routing over `app_servers`,
// LostWriteLedger records) is WorkloadDriver's, so this row differs from the sessiond rows only
// in what answers the requests.
//
// Threading: see LoadDriver.
#ifndef SESSIOND_TOOLS_BENCH_REDIS_DIRECT_DRIVER_H_
#define SESSIOND_TOOLS_BENCH_REDIS_DIRECT_DRIVER_H_

#include <memory>
#include <string>
#include <vector>

#include "tools/bench/load_driver.h"
#include "tools/bench/workload_driver.h"
#include "tools/bench/workload_options.h"

namespace sessiond::bench {

class RedisDirectDriver final : public LoadDriver {
 public:
  // `redis_url` is redis://HOST:PORT[/DB] (through the delaying proxy when the Redis link is
  // delayed); `app_servers` is how many app servers share it (the cluster size being compared):
  // each holds options.connections connections.
  RedisDirectDriver(std::string redis_url, int app_servers, WorkloadOptions options);

  // INVALID_ARGUMENT when the URL does not parse; UNAVAILABLE when Redis cannot be reached.
  Status Populate(RunProgress& progress) override;
  Result<WorkloadResult> Run(RunProgress& progress) override;
  LostWriteLedger::Verdict VerifyWrites(const LostWriteLedger& ledger,
                                        const std::vector<bool>& alive_nodes) override;

 private:
  Status url_status_;
  std::unique_ptr<WorkloadDriver> driver_;  // null when the URL did not parse
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_REDIS_DIRECT_DRIVER_H_
