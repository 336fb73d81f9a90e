// LogErrors: the completion token for coroutines that are started and not waited for (the
// daemon's, the cluster's, the modes').
//
// They report errors through statuses and error codes, never exceptions; but one that throws
// anyway (std::bad_alloc, a bug) must not vanish silently, as it would with asio::detached.
// Exceptions never cross the event loop: they end here, in the log.
#ifndef SESSIOND_REPLICATION_LOG_ERRORS_H_
#define SESSIOND_REPLICATION_LOG_ERRORS_H_

#include <spdlog/spdlog.h>

#include <exception>

namespace sessiond {

// Use as co_spawn(executor, Coroutine(), LogErrors("client writer")). `what` must be a string
// literal (it is kept by pointer).
inline auto LogErrors(const char* what) {
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

#endif  // SESSIOND_REPLICATION_LOG_ERRORS_H_
