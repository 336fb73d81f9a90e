// SessionTarget: the four session operations the benchmark workload needs, against one system
// under test (sessiond nodes through the client library, or Redis used directly), so one
// WorkloadDriver drives both and their rows compare like with like.
//
// A target lives on one load thread's loop: every method is called from that loop's thread, and
// the target is destroyed from the thread that joined it.
#ifndef SESSIOND_TOOLS_BENCH_SESSION_TARGET_H_
#define SESSIOND_TOOLS_BENCH_SESSION_TARGET_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "sessiond/asio.h"
#include "sessiond/status.h"

namespace sessiond::bench {

using Attributes = std::map<std::string, std::string>;

class SessionTarget {
 public:
  virtual ~SessionTarget() = default;

  // Connects before the first request. UNAVAILABLE, with why, when the target cannot be reached.
  virtual asio::awaitable<Status> Connect() = 0;

  // Connections this target holds over all nodes: the closed loop runs one worker per connection.
  virtual int connections() const = 0;

  // Creates a session with `attributes` through node `node` (an index into the cluster's nodes;
  // the app server that serves the user) and returns its id.
  virtual asio::awaitable<Result<std::string>> Create(uint32_t node, Attributes attributes) = 0;

  // Reads session `id` through `node`, moving its access time when `touch`. When `attributes`
  // is not null it receives the session's attributes (a caller that only measures passes null,
  // sparing the copy).
  virtual asio::awaitable<Status> Get(uint32_t node, std::string id, bool touch,
                                      Attributes* attributes) = 0;

  // Sets one attribute of session `id` through `node`.
  virtual asio::awaitable<Status> Set(uint32_t node, std::string id, std::string name,
                                      std::string value) = 0;
};

// Makes a load thread's target on `executor` with `connections_per_node` connections per node.
using SessionTargetFactory = std::function<std::unique_ptr<SessionTarget>(
    asio::any_io_executor executor, int connections_per_node)>;

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_SESSION_TARGET_H_
