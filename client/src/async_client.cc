#include "sessiond/async_client.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon_connection.h"

namespace sessiond {

using client_internal::DaemonConnection;
using client_internal::WatchHandlers;

namespace {

using Clock = std::chrono::steady_clock;

// The daemon's verdict on a request, as a Status.
Status ResponseStatus(const v1::ClientResponse& response) {
  if (response.status() == v1::OK) return Status::Ok();
  std::string message = response.error();
  if (message.empty()) {
    message = "the daemon answered " + std::string(StatusCodeName(response.status())) +
              " without saying why";
  }
  return Status(response.status(), std::move(message));
}

Status MissingResult(std::string_view operation, std::string_view what) {
  return Internal("the daemon answered " + std::string(operation) + " OK but without " +
                  std::string(what) + "; it may speak an incompatible protocol version");
}

Result<v1::Session> TakeSession(v1::ClientResponse& response, std::string_view operation) {
  if (!response.has_session()) return MissingResult(operation, "a session");
  return std::move(*response.mutable_session());
}

Result<std::vector<v1::Session>> TakeSessions(v1::ClientResponse& response,
                                              std::string_view /*operation*/) {
  // A daemon may leave an empty result unset; both mean no sessions.
  auto& sessions = *response.mutable_sessions()->mutable_sessions();
  return std::vector<v1::Session>(std::make_move_iterator(sessions.begin()),
                                  std::make_move_iterator(sessions.end()));
}

Result<v1::NodeStats> TakeStats(v1::ClientResponse& response, std::string_view operation) {
  if (!response.has_stats()) return MissingResult(operation, "its statistics");
  return std::move(*response.mutable_stats());
}

}  // namespace

// Connection management and request ids; the calls themselves run in DaemonConnection.
//
// Coroutines that outlive a call into AsyncClient take the Impl as a shared_ptr parameter, so
// an AsyncClient destroyed while they are suspended leaves them a valid (closed) Impl.
class AsyncClient::Impl {
 public:
  Impl(asio::any_io_executor executor, ClientOptions options)
      : executor_(std::move(executor)), options_(std::move(options)) {}

  // The open connection, connecting first if there is none (one attempt shared by every caller
  // that needs it). UNAVAILABLE when no endpoint accepts, or `deadline` passes first.
  static asio::awaitable<Result<std::shared_ptr<DaemonConnection>>> OpenConnection(
      std::shared_ptr<Impl> self, Clock::time_point deadline, std::chrono::milliseconds budget);

  // Sends `request` with a fresh request_id and returns the response as it is.
  static asio::awaitable<Result<v1::ClientResponse>> Call(
      std::shared_ptr<Impl> self, v1::ClientRequest request, Deadline deadline,
      std::shared_ptr<WatchHandlers> watch = nullptr);

  // Call, then the response's status, then `extract` of an OK response.
  template <typename T>
  static asio::awaitable<Result<T>> CallFor(
      std::shared_ptr<Impl> self, v1::ClientRequest request, Deadline deadline,
      Result<T> (*extract)(v1::ClientResponse&, std::string_view), std::string_view operation) {
    auto response = co_await Call(std::move(self), std::move(request), deadline);
    if (!response.ok()) co_return response.status();
    if (Status status = ResponseStatus(*response); !status.ok()) co_return status;
    co_return extract(*response, operation);
  }

  // Connects if not connected; waits for the whole attempt (each endpoint's connect_timeout).
  static asio::awaitable<Status> Connect(std::shared_ptr<Impl> self) {
    const auto budget = self->options_.connect_timeout *
                        static_cast<int64_t>(std::max<size_t>(1, self->options_.endpoints.size()));
    auto connection = co_await OpenConnection(self, Clock::time_point::max(), budget);
    co_return connection.status();
  }

  // Starts a watch: returns its request id once the daemon has answered OK.
  static asio::awaitable<Result<uint64_t>> Watch(std::shared_ptr<Impl> self,
                                                 v1::ClientRequest request, Deadline deadline,
                                                 std::shared_ptr<WatchHandlers> handlers) {
    auto response =
        co_await Call(std::move(self), std::move(request), deadline, std::move(handlers));
    if (!response.ok()) co_return response.status();
    if (Status status = ResponseStatus(*response); !status.ok()) co_return status;
    co_return response->request_id();
  }

  static asio::awaitable<Status> CallForStatus(std::shared_ptr<Impl> self,
                                               v1::ClientRequest request, Deadline deadline) {
    auto response = co_await Call(std::move(self), std::move(request), deadline);
    if (!response.ok()) co_return response.status();
    co_return ResponseStatus(*response);
  }

  // Closes the connection and aborts a connection attempt; later calls connect again.
  void Close(const Status& reason);
  // Closes for good: later calls fail. Called by ~AsyncClient.
  void Shutdown();
  void CancelWatch(uint64_t watch_id) {
    if (connection_) connection_->CancelWatch(watch_id);
  }
  std::string connected_endpoint() const {
    return connection_ && connection_->open() ? connection_->endpoint().ToString() : "";
  }

 private:
  // Tries each endpoint once, starting with next_endpoint_, then wakes every waiter.
  static asio::awaitable<void> ConnectAll(std::shared_ptr<Impl> self);

  const asio::any_io_executor executor_;
  const ClientOptions options_;

  std::shared_ptr<DaemonConnection> connection_;  // open, or null
  size_t next_endpoint_ = 0;                      // where the next connection attempt starts
  uint64_t next_request_id_ = 1;
  bool shut_down_ = false;

  // A connection attempt in progress, and the callers waiting for it (each on a timer set to its
  // own deadline, cancelled when the attempt ends).
  bool connecting_ = false;
  std::shared_ptr<DaemonConnection> connecting_to_;
  std::vector<std::shared_ptr<asio::steady_timer>> connect_waiters_;
  Status connect_error_;
  // Bumped by Close(), so that an attempt in progress knows to give up.
  uint64_t close_generation_ = 0;
};

asio::awaitable<Result<std::shared_ptr<DaemonConnection>>> AsyncClient::Impl::OpenConnection(
    std::shared_ptr<Impl> self, Clock::time_point deadline, std::chrono::milliseconds budget) {
  if (self->shut_down_) co_return Unavailable("the client was closed; create a new one");
  if (self->connection_ && self->connection_->open()) co_return self->connection_;
  if (self->options_.endpoints.empty()) {
    co_return InvalidArgument(
        "the client has no endpoint to connect to; list at least one in ClientOptions::endpoints");
  }
  if (!self->connecting_) {
    self->connecting_ = true;
    asio::co_spawn(self->executor_, ConnectAll(self), asio::detached);
  }
  auto waiter = std::make_shared<asio::steady_timer>(self->executor_, deadline);
  self->connect_waiters_.push_back(waiter);
  boost::system::error_code ignored;
  co_await waiter->async_wait(asio::redirect_error(asio::use_awaitable, ignored));

  if (self->connection_ && self->connection_->open()) co_return self->connection_;
  if (self->connecting_) {
    // The deadline came first; the attempt carries on for the other callers.
    auto& waiters = self->connect_waiters_;
    waiters.erase(std::remove(waiters.begin(), waiters.end(), waiter), waiters.end());
    co_return Unavailable("could not connect to sessiond within " + std::to_string(budget.count()) +
                          " ms; check that the daemon is running, or give the call a longer "
                          "deadline");
  }
  if (self->connect_error_.ok()) {
    co_return Unavailable("the connection to sessiond closed as soon as it opened; retry");
  }
  co_return self->connect_error_;
}

asio::awaitable<void> AsyncClient::Impl::ConnectAll(std::shared_ptr<Impl> self) {
  const uint64_t generation = self->close_generation_;
  const std::vector<Endpoint>& endpoints = self->options_.endpoints;
  std::string failures;
  bool connected = false;
  bool closed = false;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    const size_t index = (self->next_endpoint_ + i) % endpoints.size();
    // On loss, the next attempt starts after this endpoint: a daemon that dropped us is the
    // least likely to take us back.
    auto on_close = [weak = std::weak_ptr<Impl>(self), index](DaemonConnection& closed) {
      auto impl = weak.lock();
      if (!impl || impl->connection_.get() != &closed) return;
      impl->connection_.reset();
      impl->next_endpoint_ = (index + 1) % impl->options_.endpoints.size();
    };
    auto connection = std::make_shared<DaemonConnection>(self->executor_, endpoints[index],
                                                         self->options_, std::move(on_close));
    self->connecting_to_ = connection;
    Status status = co_await connection->Connect();
    self->connecting_to_.reset();
    if (self->close_generation_ != generation) {
      connection->Close(Unavailable("the client was closed while connecting"));
      closed = true;
      break;
    }
    if (status.ok()) {
      self->connection_ = std::move(connection);
      self->next_endpoint_ = index;
      connected = true;
      break;
    }
    if (!failures.empty()) failures += "; ";
    failures += status.message();
  }
  if (connected) {
    self->connect_error_ = Status::Ok();
  } else if (closed) {
    self->connect_error_ = Unavailable("the client was closed while it was connecting");
  } else {
    self->connect_error_ = Unavailable("could not connect to sessiond: " + failures +
                                       "; check that the daemon is running and listening there");
  }
  self->connecting_ = false;
  for (auto& waiter : std::exchange(self->connect_waiters_, {})) waiter->cancel();
}

asio::awaitable<Result<v1::ClientResponse>> AsyncClient::Impl::Call(
    std::shared_ptr<Impl> self, v1::ClientRequest request, Deadline deadline,
    std::shared_ptr<WatchHandlers> watch) {
  const std::chrono::milliseconds budget =
      deadline.count() > 0 ? deadline : self->options_.default_deadline;
  const Clock::time_point deadline_at = Clock::now() + budget;
  auto connection = co_await OpenConnection(self, deadline_at, budget);
  if (!connection.ok()) co_return connection.status();
  // Ids are unique per client, not per connection, so a late answer can never match a newer call.
  request.set_request_id(self->next_request_id_++);
  // `connection` (a shared_ptr) stays alive in this frame for the whole call, as Call requires.
  co_return co_await connection.value()->Call(std::move(request), deadline_at, budget,
                                              std::move(watch));
}

void AsyncClient::Impl::Close(const Status& reason) {
  ++close_generation_;
  if (connecting_to_) connecting_to_->Close(reason);
  // Taken out first so that the close handler sees a connection that is no longer current and
  // leaves next_endpoint_ alone: a deliberate close is no reason to fail over.
  if (auto connection = std::exchange(connection_, nullptr)) connection->Close(reason);
}

void AsyncClient::Impl::Shutdown() {
  shut_down_ = true;
  Close(Unavailable("the client was closed before the call finished"));
}

AsyncClient::AsyncClient(asio::any_io_executor executor, ClientOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options))) {}

AsyncClient::~AsyncClient() { impl_->Shutdown(); }

// The public calls are not coroutines themselves: each returns a coroutine of Impl that holds
// its own shared_ptr to the Impl, so no suspended call ever refers to `this`.

asio::awaitable<Status> AsyncClient::Connect() { return Impl::Connect(impl_); }

asio::awaitable<Result<v1::Session>> AsyncClient::Create(v1::CreateRequest request,
                                                         Deadline deadline) {
  v1::ClientRequest call;
  *call.mutable_create() = std::move(request);
  return Impl::CallFor<v1::Session>(impl_, std::move(call), deadline, &TakeSession, "create");
}

asio::awaitable<Result<v1::Session>> AsyncClient::Get(std::string id, bool touch,
                                                      Deadline deadline) {
  v1::ClientRequest call;
  call.mutable_get()->set_id(std::move(id));
  call.mutable_get()->set_touch(touch);
  return Impl::CallFor<v1::Session>(impl_, std::move(call), deadline, &TakeSession, "get");
}

asio::awaitable<Result<v1::Session>> AsyncClient::Update(v1::UpdateRequest request,
                                                         Deadline deadline) {
  v1::ClientRequest call;
  *call.mutable_update() = std::move(request);
  return Impl::CallFor<v1::Session>(impl_, std::move(call), deadline, &TakeSession, "update");
}

asio::awaitable<Status> AsyncClient::Invalidate(std::string id, Deadline deadline) {
  v1::ClientRequest call;
  call.mutable_invalidate()->set_id(std::move(id));
  return Impl::CallForStatus(impl_, std::move(call), deadline);
}

asio::awaitable<Result<v1::Session>> AsyncClient::RotateId(std::string id, Deadline deadline) {
  v1::ClientRequest call;
  call.mutable_rotate_id()->set_id(std::move(id));
  return Impl::CallFor<v1::Session>(impl_, std::move(call), deadline, &TakeSession, "rotate_id");
}

asio::awaitable<Result<std::vector<v1::Session>>> AsyncClient::FindByPrincipal(
    std::string principal, Deadline deadline) {
  v1::ClientRequest call;
  call.mutable_find_by_principal()->set_principal(std::move(principal));
  return Impl::CallFor<std::vector<v1::Session>>(impl_, std::move(call), deadline, &TakeSessions,
                                                 "find_by_principal");
}

asio::awaitable<Status> AsyncClient::Ping(Deadline deadline) {
  v1::ClientRequest call;
  call.mutable_ping();
  return Impl::CallForStatus(impl_, std::move(call), deadline);
}

asio::awaitable<Result<v1::NodeStats>> AsyncClient::Stats(Deadline deadline) {
  v1::ClientRequest call;
  call.mutable_stats();
  return Impl::CallFor<v1::NodeStats>(impl_, std::move(call), deadline, &TakeStats, "stats");
}

asio::awaitable<Result<uint64_t>> AsyncClient::Watch(
    std::vector<std::string> ids, std::function<void(const v1::SessionEvent&)> on_event,
    std::function<void(const Status&)> on_end, Deadline deadline) {
  v1::ClientRequest call;
  for (std::string& id : ids) call.mutable_watch()->add_ids(std::move(id));
  call.mutable_watch();  // an empty list still names the operation: watch everything
  auto handlers = std::make_shared<WatchHandlers>();
  handlers->on_event = std::move(on_event);
  handlers->on_end = std::move(on_end);
  return Impl::Watch(impl_, std::move(call), deadline, std::move(handlers));
}

void AsyncClient::CancelWatch(uint64_t watch_id) { impl_->CancelWatch(watch_id); }

asio::awaitable<Result<v1::ClientResponse>> AsyncClient::Call(v1::ClientRequest request,
                                                              Deadline deadline) {
  return Impl::Call(impl_, std::move(request), deadline);
}

void AsyncClient::Close() {
  impl_->Close(Unavailable("the client closed its connection before the call finished"));
}

std::string AsyncClient::connected_endpoint() const { return impl_->connected_endpoint(); }

}  // namespace sessiond
