// SessionLimits: what one node accepts. Each is a daemon flag; breaking one is a status, never
// a crash.
#ifndef SESSIOND_REPLICATION_SESSION_LIMITS_H_
#define SESSIOND_REPLICATION_SESSION_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace sessiond {

struct SessionLimits {
  size_t max_value_bytes = 1u << 20;       // one attribute value; TOO_LARGE beyond
  size_t max_name_bytes = 256;             // one attribute name; INVALID_ARGUMENT beyond
  size_t max_attributes = 1024;            // per session; RESOURCE_EXHAUSTED beyond
  size_t max_principal_bytes = 256;        // INVALID_ARGUMENT beyond
  uint64_t max_sessions = 10'000'000;      // per node; RESOURCE_EXHAUSTED beyond
  uint32_t default_max_idle_s = 1800;      // used when a create names none
  uint32_t max_idle_limit_s = 30 * 86400;  // largest max_idle_s / max_lifetime_s accepted
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_SESSION_LIMITS_H_
