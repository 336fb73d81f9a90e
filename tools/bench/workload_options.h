// WorkloadOptions: the traffic sessiond-bench sends, the same for every mode it compares.
//
// The model is an HTTP app behind a load balancer: each request of a user lands on an app server
// (the session's home node with probability `sticky`, any node otherwise) and that app server asks
// its own sidecar (the node) to read, write or create the session.
#ifndef SESSIOND_TOOLS_BENCH_WORKLOAD_OPTIONS_H_
#define SESSIOND_TOOLS_BENCH_WORKLOAD_OPTIONS_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sessiond/status.h"

namespace sessiond::bench {

// Relative weights of the three operations.
struct OpMix {
  int read = 80;   // get (with touch, as an app reading its session on each request)
  int write = 15;  // update setting one attribute
  int create = 5;  // create with every attribute set

  // "80:15:5" (read:write:create). INVALID_ARGUMENT unless three non-negative integers with a
  // positive sum.
  static Result<OpMix> Parse(std::string_view text);
  std::string ToString() const;
  int total() const { return read + write + create; }
};

struct WorkloadOptions {
  int sessions = 10'000;     // created before the run, spread evenly over the nodes
  int attributes = 4;        // per session
  size_t value_bytes = 256;  // per attribute value
  OpMix mix;
  double sticky = 0.9;  // share of requests sent to the session's home node
  int connections = 4;  // client connections per node (an app server's pool)
  int threads = 2;      // load-generator threads, each with its own loop
  // Requests per second over all connections; 0 = closed loop (each of connections x nodes
  // workers sends its next request when the previous one is answered).
  double rate = 0;
  std::chrono::milliseconds warmup{2000};
  std::chrono::milliseconds duration{10'000};
  std::chrono::milliseconds request_deadline{2000};
  uint32_t max_idle_s = 3600;  // long enough that nothing expires during a run
  bool touch_on_read = true;
  // Keep every write in a LostWriteLedger so they can be checked at the end.
  bool record_writes = false;
  // Write at node 1 and poll node 2 until visible, this many times a second (0 = never). Needs
  // two nodes that share sessions.
  double lag_probes_per_s = 0;
  // Open loop: at most this many requests in flight per thread; further sends wait for a slot
  // (and their latency, counted from the intended send time, shows the wait).
  int max_in_flight_per_thread = 4096;
  uint64_t seed = 1;
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_WORKLOAD_OPTIONS_H_
