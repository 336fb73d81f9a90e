// LogErrors: the completion token for coroutines the daemon starts and does not wait for.
//
// asio::detached drops an exception silently; a coroutine that dies of one should at least say
// so in the log. Exceptions never cross the event loop: they end here.
#ifndef SESSIOND_SESSIOND_LOG_ERRORS_H_
#define SESSIOND_SESSIOND_LOG_ERRORS_H_

#include <spdlog/spdlog.h>

#include <exception>

namespace sessiond {

// Use as co_spawn(executor, Coroutine(), LogErrors("client writer")).
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

#endif  // SESSIOND_SESSIOND_LOG_ERRORS_H_
