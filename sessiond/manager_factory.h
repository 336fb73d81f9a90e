// MakeSessionManager: builds the SessionManager of the mode the daemon was configured with.
//
// The one place that knows which class implements which mode; the rest of the daemon sees only
// the SessionManager interface. A mode is added here with one case.
#ifndef SESSIOND_SESSIOND_MANAGER_FACTORY_H_
#define SESSIOND_SESSIOND_MANAGER_FACTORY_H_

#include <memory>

#include "replication/clock.h"
#include "replication/session_id.h"
#include "replication/session_manager.h"
#include "sessiond/asio.h"
#include "sessiond/config.h"
#include "sessiond/status.h"

namespace sessiond {

// The manager for `config.mode`, running on `executor`; not started (the caller calls Start()).
// `clock` and `ids` are not owned and must outlive the manager. Returns UNAVAILABLE with a
// sentence when the mode cannot be built (not in this build, or its settings do not fit).
Result<std::unique_ptr<SessionManager>> MakeSessionManager(const DaemonConfig& config,
                                                           asio::any_io_executor executor,
                                                           const Clock& clock, IdGenerator& ids);

}  // namespace sessiond

#endif  // SESSIOND_SESSIOND_MANAGER_FACTORY_H_
