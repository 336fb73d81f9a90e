// HttpGet: one HTTP/1.1 GET to a daemon's admin endpoint, with a deadline on the whole exchange.
//
// The bench reads /readyz, /metrics and /cluster this way. Blocking: it runs its own small
// io_context, so it may be called from any thread that is not running an Asio loop the call could
// starve.
#ifndef SESSIOND_TOOLS_BENCH_HTTP_GET_H_
#define SESSIOND_TOOLS_BENCH_HTTP_GET_H_

#include <chrono>
#include <string>
#include <string_view>

#include "sessiond/endpoint.h"
#include "sessiond/status.h"

namespace sessiond::bench {

struct HttpResponse {
  unsigned status = 0;
  std::string body;
};

// GETs `target` (e.g. "/metrics") from the TCP endpoint `server`. UNAVAILABLE when the server
// cannot be reached or does not answer within `timeout`; any HTTP status is a successful result.
Result<HttpResponse> HttpGet(const Endpoint& server, std::string_view target,
                             std::chrono::milliseconds timeout);

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_HTTP_GET_H_
