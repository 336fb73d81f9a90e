#include "sessiond/manager_factory.h"

#include <algorithm>
#include <string>
#include <utility>

#include "replication/backup/backup_manager.h"
#include "replication/delta/delta_manager.h"
#include "replication/redis/redis_manager.h"
#include "replication/standalone_manager.h"

namespace sessiond {

ClusterOptions MakeClusterOptions(const DaemonConfig& config, const Clock& clock,
                                  uint64_t incarnation) {
  ClusterOptions options;
  options.network.self = NodeIdentity{config.cluster_name, config.node_id, incarnation};
  options.network.secret = config.cluster_secret;
  options.network.listen = config.peer_listen;
  options.network.advertise_address = config.peer_advertise;
  options.network.seeds = config.peers;
  const auto dead_after = config.peer_dead_after;
  options.heartbeat_interval =
      std::clamp(dead_after / 9, std::chrono::milliseconds(10), std::chrono::milliseconds(200));
  options.detector.dead_after_ms = dead_after.count();
  options.detector.suspect_after_ms = std::max<int64_t>(1, dead_after.count() * 5 / 9);
  options.clock = &clock;
  return options;
}

Result<ModeRuntime> MakeModeRuntime(const DaemonConfig& config, asio::any_io_executor executor,
                                    const Clock& clock, IdGenerator& ids, uint64_t incarnation) {
  ManagerOptions options;
  options.node_id = config.node_id;
  options.limits = config.limits;
  options.clock = &clock;
  options.ids = &ids;

  ModeRuntime runtime;
  switch (config.mode) {
    case DaemonMode::kStandalone:
      runtime.manager = std::make_unique<StandaloneManager>(executor, std::move(options));
      return runtime;
    case DaemonMode::kRedis: {
      RedisOptions redis;
      redis.url = *config.redis;  // the parser requires --redis in this mode
      redis.tls = config.redis_tls;
      redis.near_cache =
          config.redis_near_cache ? RedisNearCacheMode::kValidated : RedisNearCacheMode::kOff;
      runtime.manager =
          std::make_unique<RedisManager>(executor, std::move(options), std::move(redis));
      return runtime;
    }
    case DaemonMode::kDelta: {
      runtime.cluster =
          std::make_unique<Cluster>(executor, MakeClusterOptions(config, clock, incarnation));
      DeltaOptions delta;
      delta.ack = config.replication_ack;
      // A node given seeds joins a cluster that may hold sessions: it is ready only once a
      // peer's state has been transferred to it (or no peer answered within the join window).
      delta.join_cluster = !config.peers.empty();
      runtime.manager = std::make_unique<DeltaManager>(executor, std::move(options),
                                                       runtime.cluster.get(), delta);
      return runtime;
    }
    case DaemonMode::kBackup: {
      runtime.cluster =
          std::make_unique<Cluster>(executor, MakeClusterOptions(config, clock, incarnation));
      BackupOptions backup;
      backup.ack = config.replication_ack;
      backup.backups = config.backups;
      backup.move_on_access = config.backup_move_on_access;
      backup.move_after = config.backup_move_after;
      backup.ack_timeout = config.backup_ack_timeout;
      backup.fetch_timeout = config.backup_fetch_timeout;
      backup.handoff_timeout = config.backup_handoff_timeout;
      runtime.manager = std::make_unique<BackupManager>(executor, std::move(options),
                                                        runtime.cluster.get(), backup);
      return runtime;
    }
  }
  return InvalidArgument("unknown mode " + std::string(DaemonModeName(config.mode)) +
                         "; use standalone, delta, backup or redis");
}

}  // namespace sessiond
