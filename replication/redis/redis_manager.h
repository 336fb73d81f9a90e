// RedisManager: redis mode. The node holds nothing that matters; every session lives in one
// shared Redis, and every node reads and writes it (Spring Session / connect-redis style,
// without their extra round trips, leaking indexes and lost updates).
//
//  - Each operation is one round trip: a plain HGETALL for a read, one Lua script (atomic,
//    EVALSHA, reloaded after NOSCRIPT) for every change. Expected-version updates are checked
//    inside the script, so concurrent writers on any nodes get exactly the CONFLICTs the other
//    modes give.
//  - Events cross nodes on a pub/sub channel that every change publishes to inside its
//    script, and expiries come from Redis keyspace notifications; each node hands them to its
//    own watches, once, in the order Redis applied the changes. A node subscribes to the
//    events channel only while it has watches, so unwatched changes cost Redis no writes.
//  - While Redis is unreachable every request answers UNAVAILABLE and Ready() says so; the
//    connections come back by themselves.
//  - With the near cache, reads are served from memory, kept honest by CLIENT TRACKING.
//
// The layout in Redis is in redis_session_layout.h and docs/redis.md.
//
// Threading: as SessionManager: one event loop, the executor given here.
#ifndef SESSIOND_REPLICATION_REDIS_REDIS_MANAGER_H_
#define SESSIOND_REPLICATION_REDIS_REDIS_MANAGER_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "replication/redis/redis_tls_options.h"
#include "replication/redis/redis_url.h"
#include "replication/session_manager.h"
#include "replication/standalone_manager.h"

namespace sessiond {

enum class RedisNearCacheMode {
  kOff,
  // A cached session is served only after a PING on the invalidation connection has come back,
  // so no invalidation sent before the read began is still in flight: never older than an
  // update acknowledged before the read. Saves Redis the work and bandwidth of the read, not
  // the round trip.
  kValidated,
  // Served at once: no round trip, but a read may return a value for as long as an
  // invalidation takes to arrive (typically well under a millisecond) after another node's
  // update was acknowledged.
  kEventual,
};

struct RedisOptions {
  RedisUrl url;
  // The CA, client certificate and key when url.tls (rediss://); every connection (requests,
  // events, near cache) uses them.
  RedisTlsOptions tls;
  // Starts every key and channel, so clusters can share a Redis database.
  std::string key_prefix = "sd:";
  // Pipelined connections for requests: the first one up carries them all (as one batch
  // whatever is in flight together), the others stand by to take over when it drops.
  size_t connections = 2;
  std::chrono::milliseconds connect_timeout{1000};
  // A request that Redis has not answered by then fails UNAVAILABLE and its connection is
  // re-established.
  std::chrono::milliseconds command_timeout{1000};
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{2000};
  // How often the idle subscription connection is pinged to notice a dead link.
  std::chrono::milliseconds ping_interval{1000};
  // Whether sessiond may CONFIG SET notify-keyspace-events to get expiry events. When it may
  // not (or Redis refuses), expiry events depend on Redis's own configuration, and the log and
  // Ready() say so.
  bool configure_keyspace_events = true;
  // How long a node stays subscribed to the events channel after its last watch ends (it
  // subscribes only while it has watches).
  std::chrono::milliseconds unwatch_grace{10'000};
  RedisNearCacheMode near_cache = RedisNearCacheMode::kOff;
  size_t near_cache_max_entries = 100'000;
};

class RedisManager final : public SessionManager {
 public:
  // Runs on `executor` (one thread). Nothing connects before Start().
  RedisManager(asio::any_io_executor executor, ManagerOptions options, RedisOptions redis);
  ~RedisManager() override;

  std::string_view mode() const override { return "redis"; }
  // Starts connecting and waits up to the connect timeout for Redis; returns OK either way,
  // since the node serves once Redis is reachable (see Ready()). INVALID_ARGUMENT, and nothing
  // started, when the TLS files cannot be used.
  asio::awaitable<Status> Start() override;
  asio::awaitable<void> Stop() override;

  asio::awaitable<Result<v1::Session>> Create(v1::CreateRequest request) override;
  asio::awaitable<Result<v1::Session>> Get(v1::GetRequest request) override;
  asio::awaitable<Result<v1::Session>> Update(v1::UpdateRequest request) override;
  asio::awaitable<Status> Invalidate(v1::InvalidateRequest request) override;
  asio::awaitable<Result<v1::Session>> RotateId(v1::RotateIdRequest request) override;
  asio::awaitable<Result<v1::SessionList>> FindByPrincipal(
      v1::FindByPrincipalRequest request) override;
  std::unique_ptr<WatchHandle> Watch(std::vector<std::string> ids, EventSink sink) override;
  // Subscribes this node to the events channel (it listens only while it has watches, and
  // unwatch_grace after) and returns once Redis confirmed it.
  asio::awaitable<void> PrepareWatch() override;
  // `sessions` is the near cache's size (the node holds no sessions of its own); the counters
  // cover operations, Redis connections, events and the near cache.
  v1::NodeStats Stats() const override;
  // Ready when requests reach Redis and the event subscription is up.
  Readiness Ready() const override;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;  // shared with the background work, which may outlive a call
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_REDIS_REDIS_MANAGER_H_
