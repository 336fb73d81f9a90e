// DigestOf: the ContentDigest (see session_manager.h) of the sessions a SessionStore holds.
//
// FNV-1a over the live sessions sorted by id: id, creation time, max_idle_s, max_lifetime_s,
// principal and the attributes sorted by name. Versions and access times are left out: they
// differ between replicas that hold the same content. Stable across processes and builds.
#ifndef SESSIOND_REPLICATION_CONTENT_DIGEST_H_
#define SESSIOND_REPLICATION_CONTENT_DIGEST_H_

#include <cstdint>

#include "replication/session_manager.h"
#include "replication/session_store.h"

namespace sessiond {

ContentDigest DigestOf(const SessionStore& store, int64_t now_ms);

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_CONTENT_DIGEST_H_
