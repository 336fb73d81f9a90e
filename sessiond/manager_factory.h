// MakeModeRuntime: builds what the daemon runs for the mode it was configured with.
//
// The one place that knows which class implements which mode; the rest of the daemon sees only
// the SessionManager interface and, in the clustered modes, the Cluster for its admin views. A
// mode is added here with one case.
#ifndef SESSIOND_SESSIOND_MANAGER_FACTORY_H_
#define SESSIOND_SESSIOND_MANAGER_FACTORY_H_

#include <cstdint>
#include <memory>

#include "replication/clock.h"
#include "replication/cluster/cluster.h"
#include "replication/session_id.h"
#include "replication/session_manager.h"
#include "sessiond/asio.h"
#include "sessiond/config.h"
#include "sessiond/status.h"

namespace sessiond {

struct ModeRuntime {
  // The peer links and membership of the clustered modes (delta, backup); nullptr otherwise.
  // Declared first so that it is destroyed after the manager that replicates through it.
  std::unique_ptr<Cluster> cluster;
  std::unique_ptr<SessionManager> manager;
};

// The cluster options --peer-listen, --peers, --cluster-name, --cluster-secret-file,
// --peer-advertise and --peer-dead-after-ms ask for. Heartbeats go out every ninth of the dead
// time (at most every 200 ms), and a silent peer turns suspect after five ninths of it.
ClusterOptions MakeClusterOptions(const DaemonConfig& config, const Clock& clock,
                                  uint64_t incarnation);

// The runtime for `config.mode`, on `executor`; nothing is started (the caller starts the
// cluster, then the manager). `clock` and `ids` are not owned and must outlive the runtime.
// `incarnation` identifies this start of the process to peers. Returns UNAVAILABLE with a
// sentence when the mode cannot be built.
Result<ModeRuntime> MakeModeRuntime(const DaemonConfig& config, asio::any_io_executor executor,
                                    const Clock& clock, IdGenerator& ids, uint64_t incarnation);

}  // namespace sessiond

#endif  // SESSIOND_SESSIOND_MANAGER_FACTORY_H_
