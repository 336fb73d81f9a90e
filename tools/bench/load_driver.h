// LoadDriver: sends the benchmark's workload to one system under test and measures it.
//
// Two implementations: WorkloadDriver (sessiond nodes, through the client library) and
// RedisDirectDriver (Redis itself, as an app using Spring Session or connect-redis would). The
// bench runs the same WorkloadOptions through each, so their rows compare like with like.
//
// Call order: Populate, then Run (once), then VerifyWrites if writes were recorded.
// Threading: every method is blocking and called from the bench's main thread; drivers run
// their own load threads inside Run.
#ifndef SESSIOND_TOOLS_BENCH_LOAD_DRIVER_H_
#define SESSIOND_TOOLS_BENCH_LOAD_DRIVER_H_

#include <string_view>
#include <vector>

#include "sessiond/status.h"
#include "tools/bench/lost_write_ledger.h"
#include "tools/bench/workload_result.h"

namespace sessiond::bench {

class LoadDriver {
 public:
  virtual ~LoadDriver() = default;

  // Creates the initial sessions. UNAVAILABLE when the target cannot take them (with why).
  virtual Status Populate(RunProgress& progress) = 0;

  // Warm-up, then the measured interval; returns what was measured. Stops early, with
  // `interrupted` set, once progress.stop is set.
  virtual Result<WorkloadResult> Run(RunProgress& progress) = 0;

  // Reads back every session of `ledger` (at its home node when that is in `alive_nodes`, else at
  // the first alive node) and judges every recorded write.
  virtual LostWriteLedger::Verdict VerifyWrites(const LostWriteLedger& ledger,
                                                const std::vector<bool>& alive_nodes) = 0;
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_LOAD_DRIVER_H_
