// RequestHandler: turns one ClientRequest into the SessionManager call it names and the
// ClientResponse that answers it. Pure dispatch: it knows nothing of sockets or of which mode is
// behind the manager, so it is tested against a StandaloneManager with a ManualClock.
//
// Threading: used on the manager's event loop only.
#ifndef SESSIOND_SESSIOND_REQUEST_HANDLER_H_
#define SESSIOND_SESSIOND_REQUEST_HANDLER_H_

#include <chrono>
#include <cstdint>

#include "replication/session_manager.h"
#include "sessiond/asio.h"
#include "sessiond/connection_context.h"
#include "sessiond/metrics.h"
#include "sessiond/v1/sessiond.pb.h"

namespace sessiond {

class RequestHandler {
 public:
  // `manager` must outlive the handler. `metrics` may be null (then nothing is recorded);
  // otherwise it must outlive the handler too.
  RequestHandler(SessionManager& manager, Metrics* metrics);

  // Answers `request` into `response` (cleared first; its request_id is the request's).
  // Consumes `request`: its operation is moved into the manager call. A Watch subscribes through
  // `connection`, which then receives the watch's events. `connection` and `response` must stay
  // alive until the returned awaitable completes. An exception from the manager (a bug) leaves
  // the awaitable; the caller answers INTERNAL.
  //
  // Not itself a coroutine: it returns the small coroutine of the one operation, so a request
  // costs one frame here, not one per layer (this is the daemon's hot path).
  asio::awaitable<void> Handle(v1::ClientRequest& request, ConnectionContext& connection,
                               v1::ClientResponse& response);

 private:
  // Awaits `call` and puts its result into `response`; records `op` in the metrics.
  asio::awaitable<void> AnswerSession(Metrics::Op op, asio::awaitable<Result<v1::Session>> call,
                                      v1::ClientResponse& response);
  asio::awaitable<void> AnswerStatus(Metrics::Op op, asio::awaitable<Status> call,
                                     v1::ClientResponse& response);
  asio::awaitable<void> AnswerSessions(Metrics::Op op,
                                       asio::awaitable<Result<v1::SessionList>> call,
                                       v1::ClientResponse& response);
  // For the operations answered without waiting: records `op` and completes at once.
  asio::awaitable<void> Answered(Metrics::Op op, const v1::ClientResponse& response,
                                 std::chrono::steady_clock::time_point start);
  // For a request with no operation, answered (and counted) by Handle.
  static asio::awaitable<void> AnsweredWithoutOp();
  // A watch, made and answered once the manager is ready for it (PrepareWatch).
  asio::awaitable<void> AnswerWatch(v1::WatchRequest request, uint64_t watch_id,
                                    ConnectionContext& connection, v1::ClientResponse& response,
                                    std::chrono::steady_clock::time_point start);
  void Watch(v1::WatchRequest& request, uint64_t watch_id, ConnectionContext& connection,
             v1::ClientResponse& response);
  void Record(Metrics::Op op, const v1::ClientResponse& response,
              std::chrono::steady_clock::time_point start);

  SessionManager& manager_;
  Metrics* metrics_;
};

}  // namespace sessiond

#endif  // SESSIOND_SESSIOND_REQUEST_HANDLER_H_
