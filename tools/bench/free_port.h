// Free TCP ports on 127.0.0.1, for daemons whose ports must be known before they start (the peer
// ports that every node's --peers lists, and redis-server, whose --port 0 means "no TCP").
//
// The ports are found by binding port 0 and releasing it, so another process may take one before
// the daemon binds it; callers treat a bind failure at start as "try again with new ports".
#ifndef SESSIOND_TOOLS_BENCH_FREE_PORT_H_
#define SESSIOND_TOOLS_BENCH_FREE_PORT_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sessiond/status.h"

namespace sessiond::bench {

// `count` distinct ports that were free a moment ago. All are held while the next is picked, so
// they differ. UNAVAILABLE when the system has none to give.
Result<std::vector<uint16_t>> PickFreePorts(size_t count);

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_FREE_PORT_H_
