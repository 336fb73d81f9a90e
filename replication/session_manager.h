// SessionManager: the one seam between the daemon and the replication modes.
//
// The daemon's request handler calls it and knows nothing of which mode is behind it
// (standalone, delta, backup, redis); each mode is a separate implementation. Modelled on
// Tomcat's Manager interface.
//
// Threading: a manager belongs to one event loop (the executor it was built with). Every method
// is called on that loop and none blocks it; operations that wait (for peers, for Redis) are
// coroutines that suspend.
#ifndef SESSIOND_REPLICATION_SESSION_MANAGER_H_
#define SESSIOND_REPLICATION_SESSION_MANAGER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sessiond/asio.h"
#include "sessiond/status.h"
#include "sessiond/v1/sessiond.pb.h"

namespace sessiond {

// Receives watch events, on the manager's loop. Must not call back into the manager's Watch.
using EventSink = std::function<void(const v1::SessionEvent&)>;

// Keeps a watch alive; destroying it ends the subscription. Destroy it on the manager's loop.
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
};

struct Readiness {
  bool ready = false;
  std::string detail;  // why not, or what was done ("state transfer 40% from n2")
};

// A summary of the sessions a node holds: equal on two nodes exactly when they hold the same
// sessions with the same content (ids, principal, limits, attributes), whatever the versions and
// the order changes arrived in. Shown by `sessionctl digest` and the admin endpoint's /digest,
// so convergence can be checked from outside.
struct ContentDigest {
  uint64_t sessions = 0;
  uint64_t hash = 0;
};

class SessionManager {
 public:
  virtual ~SessionManager() = default;

  // "standalone", "delta", "backup" or "redis".
  virtual std::string_view mode() const = 0;

  // Begins serving: expiry, joining the cluster, connecting to Redis. Returns once started;
  // readiness may come later (see Ready()).
  virtual asio::awaitable<Status> Start() = 0;
  // Graceful stop: hand off what must be handed off, end timers and links. After it returns
  // no method but the destructor is called.
  virtual asio::awaitable<void> Stop() = 0;

  // The operations of the client protocol. Each returns what the matching ClientResponse
  // carries; errors are statuses with an actionable sentence (NOT_FOUND for an unknown id,
  // CONFLICT for a stale expected_version, TOO_LARGE / RESOURCE_EXHAUSTED for a broken limit,
  // UNAVAILABLE when the change could not be applied or replicated as the mode promises).
  virtual asio::awaitable<Result<v1::Session>> Create(v1::CreateRequest request) = 0;
  virtual asio::awaitable<Result<v1::Session>> Get(v1::GetRequest request) = 0;
  virtual asio::awaitable<Result<v1::Session>> Update(v1::UpdateRequest request) = 0;
  virtual asio::awaitable<Status> Invalidate(v1::InvalidateRequest request) = 0;
  virtual asio::awaitable<Result<v1::Session>> RotateId(v1::RotateIdRequest request) = 0;
  virtual asio::awaitable<Result<v1::SessionList>> FindByPrincipal(
      v1::FindByPrincipalRequest request) = 0;

  // Subscribes `sink` to the events of the sessions named in `ids` (every session when empty).
  // A watch on an id follows it through RotateId. The subscription lasts as long as the handle.
  virtual std::unique_ptr<WatchHandle> Watch(std::vector<std::string> ids, EventSink sink) = 0;
  // Called before Watch when a client asks for a watch; returns once a watch made right after it
  // is live: it sees every change applied from then on. Redis mode hears events only while it
  // has watches, and waits here for Redis to confirm its subscription; the other modes are live
  // at once.
  virtual asio::awaitable<void> PrepareWatch() { co_return; }

  // Node id, mode, sessions held and mode-specific counters.
  virtual v1::NodeStats Stats() const = 0;
  // Joined and caught up (for /readyz).
  virtual Readiness Ready() const = 0;
  // The content digest of the sessions this node holds; nullopt when it holds none itself
  // (redis mode, where Redis is the store).
  virtual std::optional<ContentDigest> Digest() const { return std::nullopt; }
  // Appends the mode's own metric families, in the Prometheus text format, to /metrics (gauges
  // such as sessions held as primary, state-transfer progress). Stats() counters are exported
  // already, as sessiond_manager_counter{name="..."}.
  virtual void AppendMetrics(std::string& out) const { (void)out; }
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_SESSION_MANAGER_H_
