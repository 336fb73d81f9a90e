#include "sessiond/request_handler.h"

#include <string>
#include <utility>
#include <vector>

namespace sessiond {
namespace {

using Clock = std::chrono::steady_clock;

void SetError(const Status& status, v1::ClientResponse& response) {
  response.set_status(status.code());
  response.set_error(status.message());
}

}  // namespace

RequestHandler::RequestHandler(SessionManager& manager, Metrics* metrics)
    : manager_(manager), metrics_(metrics) {}

asio::awaitable<void> RequestHandler::Handle(v1::ClientRequest& request,
                                             ConnectionContext& connection,
                                             v1::ClientResponse& response) {
  response.Clear();
  response.set_request_id(request.request_id());
  const Clock::time_point start = Clock::now();
  switch (request.op_case()) {
    case v1::ClientRequest::kCreate:
      return AnswerSession(Metrics::Op::kCreate,
                           manager_.Create(std::move(*request.mutable_create())), response);
    case v1::ClientRequest::kGet:
      return AnswerSession(Metrics::Op::kGet, manager_.Get(std::move(*request.mutable_get())),
                           response);
    case v1::ClientRequest::kUpdate:
      return AnswerSession(Metrics::Op::kUpdate,
                           manager_.Update(std::move(*request.mutable_update())), response);
    case v1::ClientRequest::kInvalidate:
      return AnswerStatus(Metrics::Op::kInvalidate,
                          manager_.Invalidate(std::move(*request.mutable_invalidate())), response);
    case v1::ClientRequest::kRotateId:
      return AnswerSession(Metrics::Op::kRotateId,
                           manager_.RotateId(std::move(*request.mutable_rotate_id())), response);
    case v1::ClientRequest::kFindByPrincipal:
      return AnswerSessions(
          Metrics::Op::kFindByPrincipal,
          manager_.FindByPrincipal(std::move(*request.mutable_find_by_principal())), response);
    case v1::ClientRequest::kWatch:
      return AnswerWatch(std::move(*request.mutable_watch()), request.request_id(), connection,
                         response, start);
    case v1::ClientRequest::kPing:
      return Answered(Metrics::Op::kPing, response, start);
    case v1::ClientRequest::kStats:
      *response.mutable_stats() = manager_.Stats();
      return Answered(Metrics::Op::kStats, response, start);
    case v1::ClientRequest::OP_NOT_SET:
      break;
  }
  SetError(InvalidArgument("request " + std::to_string(request.request_id()) +
                           " names no operation; set one of create, get, update, invalidate, "
                           "rotate_id, find_by_principal, watch, ping or stats (a client newer "
                           "than this daemon may be sending one it does not know)"),
           response);
  if (metrics_ != nullptr) metrics_->RecordRequestWithoutOp();
  return AnsweredWithoutOp();
}

asio::awaitable<void> RequestHandler::AnswerSession(Metrics::Op op,
                                                    asio::awaitable<Result<v1::Session>> call,
                                                    v1::ClientResponse& response) {
  const Clock::time_point start = Clock::now();
  Result<v1::Session> result = co_await std::move(call);
  if (result.ok()) {
    // Swapped, not copied: the attributes may be large.
    response.mutable_session()->Swap(&result.value());
  } else {
    SetError(result.status(), response);
  }
  Record(op, response, start);
}

asio::awaitable<void> RequestHandler::AnswerStatus(Metrics::Op op, asio::awaitable<Status> call,
                                                   v1::ClientResponse& response) {
  const Clock::time_point start = Clock::now();
  Status status = co_await std::move(call);
  if (!status.ok()) SetError(status, response);
  Record(op, response, start);
}

asio::awaitable<void> RequestHandler::AnswerSessions(Metrics::Op op,
                                                     asio::awaitable<Result<v1::SessionList>> call,
                                                     v1::ClientResponse& response) {
  const Clock::time_point start = Clock::now();
  Result<v1::SessionList> result = co_await std::move(call);
  if (result.ok()) {
    response.mutable_sessions()->Swap(&result.value());
  } else {
    SetError(result.status(), response);
  }
  Record(op, response, start);
}

asio::awaitable<void> RequestHandler::Answered(Metrics::Op op, const v1::ClientResponse& response,
                                               Clock::time_point start) {
  Record(op, response, start);
  co_return;
}

asio::awaitable<void> RequestHandler::AnsweredWithoutOp() { co_return; }

asio::awaitable<void> RequestHandler::AnswerWatch(v1::WatchRequest request, uint64_t watch_id,
                                                  ConnectionContext& connection,
                                                  v1::ClientResponse& response,
                                                  Clock::time_point start) {
  co_await manager_.PrepareWatch();
  // The watch and its answer in one turn of the loop: no event can go out before the answer.
  Watch(request, watch_id, connection, response);
  Record(Metrics::Op::kWatch, response, start);
}

void RequestHandler::Watch(v1::WatchRequest& request, uint64_t watch_id,
                           ConnectionContext& connection, v1::ClientResponse& response) {
  std::vector<std::string> ids;
  ids.reserve(request.ids_size());
  for (std::string& id : *request.mutable_ids()) ids.push_back(std::move(id));
  // The sink refers to the connection, which owns the handle: the watch cannot outlive it.
  std::unique_ptr<WatchHandle> handle =
      manager_.Watch(std::move(ids), [&connection, watch_id](const v1::SessionEvent& event) {
        connection.PushWatchEvent(watch_id, event);
      });
  if (Status status = connection.AdoptWatch(std::move(handle)); !status.ok()) {
    SetError(status, response);
  }
}

void RequestHandler::Record(Metrics::Op op, const v1::ClientResponse& response,
                            Clock::time_point start) {
  if (metrics_ != nullptr) metrics_->RecordRequest(op, response.status(), Clock::now() - start);
}

}  // namespace sessiond
