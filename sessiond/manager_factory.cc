#include "sessiond/manager_factory.h"

#include <string>

#include "replication/redis/redis_manager.h"
#include "replication/standalone_manager.h"

namespace sessiond {

Result<std::unique_ptr<SessionManager>> MakeSessionManager(const DaemonConfig& config,
                                                           asio::any_io_executor executor,
                                                           const Clock& clock, IdGenerator& ids) {
  ManagerOptions options;
  options.node_id = config.node_id;
  options.limits = config.limits;
  options.clock = &clock;
  options.ids = &ids;

  switch (config.mode) {
    case DaemonMode::kStandalone:
      return std::unique_ptr<SessionManager>(
          std::make_unique<StandaloneManager>(executor, std::move(options)));
    case DaemonMode::kRedis: {
      RedisOptions redis;
      redis.url = *config.redis;  // the parser requires --redis in this mode
      redis.near_cache =
          config.redis_near_cache ? RedisNearCacheMode::kValidated : RedisNearCacheMode::kOff;
      return std::unique_ptr<SessionManager>(
          std::make_unique<RedisManager>(executor, std::move(options), std::move(redis)));
    }
    case DaemonMode::kDelta:
    case DaemonMode::kBackup:
      break;
  }
  return Unavailable("mode " + std::string(DaemonModeName(config.mode)) +
                     " is not available in this build yet; run with --mode standalone");
}

}  // namespace sessiond
