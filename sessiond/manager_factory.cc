#include "sessiond/manager_factory.h"

#include <string>

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
    case DaemonMode::kDelta:
    case DaemonMode::kBackup:
    case DaemonMode::kRedis:
      break;
  }
  return Unavailable("mode " + std::string(DaemonModeName(config.mode)) +
                     " is not available in this build yet; run with --mode standalone");
}

}  // namespace sessiond
