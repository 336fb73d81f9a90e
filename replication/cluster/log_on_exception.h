// LogOnException: the completion handler for the cluster's detached coroutines.
//
// The cluster's coroutines report errors through statuses and error codes, never exceptions;
// but a coroutine that throws anyway (std::bad_alloc, a bug) must not vanish silently, as it
// would with asio::detached.
#ifndef SESSIOND_REPLICATION_CLUSTER_LOG_ON_EXCEPTION_H_
#define SESSIOND_REPLICATION_CLUSTER_LOG_ON_EXCEPTION_H_

#include <spdlog/spdlog.h>

#include <exception>

namespace sessiond {

// Returns a co_spawn completion handler that logs an escaped exception, naming `what`.
// `what` must be a string literal (it is kept by pointer).
inline auto LogOnException(const char* what) {
  return [what](std::exception_ptr error) {
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      spdlog::error("{} ended with an exception: {}", what, e.what());
    } catch (...) {
      spdlog::error("{} ended with an unknown exception", what);
    }
  };
}

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_CLUSTER_LOG_ON_EXCEPTION_H_
