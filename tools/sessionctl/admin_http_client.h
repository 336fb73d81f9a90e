// AdminHttpClient: fetches a page of a daemon's admin HTTP endpoint (/cluster, /metrics, ...).
#ifndef SESSIOND_TOOLS_SESSIONCTL_ADMIN_HTTP_CLIENT_H_
#define SESSIOND_TOOLS_SESSIONCTL_ADMIN_HTTP_CLIENT_H_

#include <chrono>
#include <string>
#include <string_view>

#include "sessiond/endpoint.h"
#include "sessiond/status.h"

namespace sessiond::sessionctl {

class AdminHttpClient {
 public:
  // `admin` is the daemon's --admin-listen address; `timeout` bounds each whole request.
  AdminHttpClient(Endpoint admin, std::chrono::milliseconds timeout)
      : admin_(std::move(admin)), timeout_(timeout) {}

  // GETs `path` and returns the body of a 200 answer. UNAVAILABLE with a sentence when the
  // endpoint cannot be reached in time or answers with another status. Blocks the caller.
  Result<std::string> Get(std::string_view path) const;

 private:
  Endpoint admin_;
  std::chrono::milliseconds timeout_;
};

}  // namespace sessiond::sessionctl

#endif  // SESSIOND_TOOLS_SESSIONCTL_ADMIN_HTTP_CLIENT_H_
