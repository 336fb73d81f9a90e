// LoadClusterSecret: reads the shared secret named by --cluster-secret-file.
#ifndef SESSIOND_REPLICATION_CLUSTER_CLUSTER_SECRET_H_
#define SESSIOND_REPLICATION_CLUSTER_CLUSTER_SECRET_H_

#include <string>

#include "sessiond/status.h"

namespace sessiond {

// Shortest secret accepted, in bytes: a shorter one is guessable offline from one handshake.
inline constexpr size_t kMinClusterSecretBytes = 16;

// Returns the file's contents without trailing whitespace (so `echo secret > file` works).
// INVALID_ARGUMENT, with a sentence naming the file, when it cannot be read or holds fewer than
// kMinClusterSecretBytes bytes. Logs a warning when the file is readable by group or others.
// Call at start-up, before the event loop runs (it blocks on the file system).
Result<std::string> LoadClusterSecret(const std::string& path);

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_CLUSTER_CLUSTER_SECRET_H_
