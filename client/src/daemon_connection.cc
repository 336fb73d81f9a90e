#include "daemon_connection.h"

#include <sys/un.h>

#include <algorithm>
#include <string>
#include <utility>

namespace sessiond {
namespace client_internal {
namespace {

// Requests queued beyond this while the daemon is not reading them are refused rather than
// buffered without bound.
constexpr size_t kMaxQueuedBytes = 64u << 20;
// Write buffers larger than this are released after use instead of kept for the next write.
constexpr size_t kRetainedBufferBytes = 1u << 20;
// A write that has not finished within this long (or the default deadline, if longer) means the
// daemon stopped reading: the connection is closed.
constexpr std::chrono::milliseconds kMinWriteTimeout{1000};

std::string Millis(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

}  // namespace

struct DaemonConnection::PendingCall {
  PendingCall(DaemonConnection& connection, uint64_t request_id, Clock::time_point deadline)
      : connection(connection), request_id(request_id), timer(connection.executor_, deadline) {}
  // Also runs when the awaiting coroutine is destroyed unresumed (its executor shut down).
  ~PendingCall() {
    if (in_table) connection.pending_.erase(request_id);
  }

  // Fills the outcome and wakes the waiting coroutine.
  void Complete(Result<v1::ClientResponse> result) {
    in_table = false;
    outcome.emplace(std::move(result));
    timer.cancel();
  }

  DaemonConnection& connection;
  const uint64_t request_id;
  // Expires at the call's deadline; cancelled when the outcome arrives first.
  asio::steady_timer timer;
  bool in_table = false;
  std::shared_ptr<WatchHandlers> watch;
  std::optional<Result<v1::ClientResponse>> outcome;
};

DaemonConnection::DaemonConnection(asio::any_io_executor executor, Endpoint endpoint,
                                   const ClientOptions& options, CloseHandler on_close)
    : executor_(executor),
      endpoint_(std::move(endpoint)),
      endpoint_text_(endpoint_.ToString()),
      frame_options_(options.frames),
      connect_timeout_(options.connect_timeout),
      write_timeout_(std::max(options.default_deadline, kMinWriteTimeout)),
      on_close_(std::move(on_close)),
      socket_(executor),
      resolver_(executor),
      connect_timer_(executor),
      writer_wakeup_(executor, Clock::time_point::max()),
      write_watchdog_(executor),
      decoder_(options.frames) {}

DaemonConnection::~DaemonConnection() = default;

asio::awaitable<Status> DaemonConnection::Connect() {
  // The timer holds only a weak reference: a connection given up on must not be kept alive by it.
  connect_timer_.expires_after(connect_timeout_);
  connect_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& error) {
    auto self = weak.lock();
    if (error || !self || self->state_ != State::kConnecting) return;
    self->connect_timed_out_ = true;
    boost::system::error_code ignored;
    self->socket_.close(ignored);
    self->resolver_.cancel();
  });
  const boost::system::error_code error = co_await ConnectSocket();
  connect_timer_.cancel();

  if (state_ == State::kClosed) co_return close_reason_;
  if (connect_timed_out_) {
    Close(Unavailable(endpoint_text_ + " did not accept a connection within " +
                      Millis(connect_timeout_)));
    co_return close_reason_;
  }
  if (error) {
    Close(Unavailable(endpoint_text_ + " refused or failed the connection (" + error.message() +
                      ")"));
    co_return close_reason_;
  }
  if (endpoint_.kind == Endpoint::Kind::kTcp) {
    // Requests are small and latency matters more than packet count; batching happens in the
    // writer instead.
    boost::system::error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  }

  state_ = State::kOpen;
  auto self = shared_from_this();
  asio::co_spawn(
      executor_, [self] { return self->ReadLoop(); }, asio::detached);
  asio::co_spawn(
      executor_, [self] { return self->WriteLoop(); }, asio::detached);
  asio::co_spawn(
      executor_, [self] { return self->WatchWrites(); }, asio::detached);
  co_return Status::Ok();
}

asio::awaitable<boost::system::error_code> DaemonConnection::ConnectSocket() {
  boost::system::error_code error;
  if (endpoint_.kind == Endpoint::Kind::kUnix) {
    // Checked here too (Endpoint::Parse checks it) because Asio throws on a path too long.
    if (endpoint_.path.size() >= sizeof(sockaddr_un::sun_path)) {
      co_return asio::error::name_too_long;
    }
    co_await socket_.async_connect(
        Socket::endpoint_type(asio::local::stream_protocol::endpoint(endpoint_.path)),
        asio::redirect_error(asio::use_awaitable, error));
    co_return error;
  }

  const auto addresses =
      co_await resolver_.async_resolve(endpoint_.host, std::to_string(endpoint_.port),
                                       asio::redirect_error(asio::use_awaitable, error));
  if (error) co_return error;
  // A name can resolve to several addresses (IPv6 and IPv4 localhost): take the first that answers.
  error = asio::error::host_not_found;
  for (const auto& entry : addresses) {
    if (state_ != State::kConnecting || connect_timed_out_) break;
    boost::system::error_code ignored;
    socket_.close(ignored);
    co_await socket_.async_connect(Socket::endpoint_type(entry.endpoint()),
                                   asio::redirect_error(asio::use_awaitable, error));
    if (!error) break;
  }
  co_return error;
}

asio::awaitable<Result<v1::ClientResponse>> DaemonConnection::Call(
    v1::ClientRequest request, Clock::time_point deadline, std::chrono::milliseconds budget,
    std::shared_ptr<WatchHandlers> watch) {
  if (state_ != State::kOpen) co_return NotOpen();
  if (outbox_.size() >= kMaxQueuedBytes) {
    co_return ResourceExhausted("more than " + std::to_string(kMaxQueuedBytes) +
                                " bytes of requests are waiting to be sent to " + endpoint_text_ +
                                ", which is not reading them; slow down or wait for answers");
  }
  const uint64_t request_id = request.request_id();
  if (pending_.count(request_id) != 0) {
    co_return Internal("request id " + std::to_string(request_id) +
                       " is already waiting for an answer; this is a bug in the client library");
  }
  // Serialized straight into the queue; the writer picks it up with whatever else is queued.
  Status framed = AppendMessageFrame(outbox_, request, frame_options_);
  if (!framed.ok()) co_return framed;

  PendingCall call(*this, request_id, deadline);
  call.watch = std::move(watch);
  pending_.emplace(request_id, &call);
  call.in_table = true;
  writer_wakeup_.cancel();

  boost::system::error_code ignored;
  co_await call.timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  // Checked first: an answer and the deadline can land in the same turn of the loop.
  if (call.outcome) co_return std::move(*call.outcome);
  co_return Unavailable("no answer from " + endpoint_text_ + " within " + Millis(budget) +
                        "; the daemon may be overloaded or stuck: retry, or give the call a "
                        "longer deadline (the request may or may not have been applied)");
}

void DaemonConnection::CancelWatch(uint64_t request_id) { watches_.erase(request_id); }

void DaemonConnection::Close(const Status& reason) {
  if (state_ == State::kClosed) return;
  // The handlers below may drop every other reference to this connection.
  const auto keep_alive = weak_from_this().lock();
  state_ = State::kClosed;
  close_reason_ = reason.ok() ? Unavailable("the connection to " + endpoint_text_ +
                                            " was closed; the next call reconnects")
                              : reason;

  boost::system::error_code ignored;
  socket_.close(ignored);
  resolver_.cancel();
  connect_timer_.cancel();
  writer_wakeup_.cancel();
  write_watchdog_.cancel();

  for (auto& [id, call] : std::exchange(pending_, {})) call->Complete(close_reason_);
  for (auto& [id, watch] : std::exchange(watches_, {})) {
    if (watch->on_end) watch->on_end(close_reason_);
  }
  if (on_close_) std::exchange(on_close_, nullptr)(*this);
}

asio::awaitable<void> DaemonConnection::ReadLoop() {
  std::string payload;
  while (state_ == State::kOpen) {
    boost::system::error_code error;
    const size_t n = co_await socket_.async_read_some(
        asio::buffer(read_buffer_), asio::redirect_error(asio::use_awaitable, error));
    if (state_ != State::kOpen) co_return;
    if (error) {
      Close(ConnectionLost(error));
      co_return;
    }
    // No read deadline: an idle connection (or one carrying only a watch) is legitimately silent.
    // Each call's own deadline bounds how long its caller waits.
    decoder_.Feed(std::string_view(read_buffer_.data(), n));
    for (;;) {
      const FrameDecoder::State state = decoder_.Next(&payload);
      if (state == FrameDecoder::State::kNeedMore) break;
      if (state == FrameDecoder::State::kError) {
        Close(Unavailable(endpoint_text_ + " sent a malformed frame (" +
                          decoder_.error().message() +
                          "); the connection was closed, and the next call reconnects"));
        co_return;
      }
      v1::ClientResponse response;
      if (!response.ParseFromString(payload)) {
        Close(Unavailable(endpoint_text_ +
                          " sent a frame that is not a sessiond.v1.ClientResponse; check that "
                          "the endpoint is a sessiond client port, not a peer or admin port"));
        co_return;
      }
      Dispatch(std::move(response));
      // A watch handler may have closed the connection.
      if (state_ != State::kOpen) co_return;
    }
  }
}

void DaemonConnection::Dispatch(v1::ClientResponse response) {
  const uint64_t request_id = response.request_id();
  if (auto it = pending_.find(request_id); it != pending_.end()) {
    PendingCall* call = it->second;
    pending_.erase(it);
    // Registered here, not when the caller resumes, so that events read in this same batch
    // already find their watch.
    if (call->watch && response.status() == v1::OK) {
      watches_.emplace(request_id, std::move(call->watch));
    }
    call->Complete(std::move(response));
    return;
  }
  if (response.has_event()) {
    if (auto it = watches_.find(request_id); it != watches_.end()) {
      const std::shared_ptr<WatchHandlers> watch = it->second;
      if (watch->on_event) watch->on_event(response.event());
    }
    return;
  }
  if (request_id == 0 && response.status() != v1::OK) {
    daemon_error_ = response.error();
  }
  // Anything else answers a call that already missed its deadline: dropped.
}

asio::awaitable<void> DaemonConnection::WriteLoop() {
  while (state_ == State::kOpen) {
    if (outbox_.empty()) {
      boost::system::error_code ignored;
      co_await writer_wakeup_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      continue;
    }
    in_flight_.clear();
    std::swap(outbox_, in_flight_);
    writing_ = true;
    write_started_ = Clock::now();
    boost::system::error_code error;
    co_await asio::async_write(socket_, asio::buffer(in_flight_),
                               asio::redirect_error(asio::use_awaitable, error));
    writing_ = false;
    if (state_ != State::kOpen) co_return;
    if (error) {
      Close(ConnectionLost(error));
      co_return;
    }
    if (in_flight_.capacity() > kRetainedBufferBytes) std::string().swap(in_flight_);
  }
}

asio::awaitable<void> DaemonConnection::WatchWrites() {
  while (state_ == State::kOpen) {
    write_watchdog_.expires_after(write_timeout_);
    boost::system::error_code ignored;
    co_await write_watchdog_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    if (state_ != State::kOpen) co_return;
    if (writing_ && Clock::now() - write_started_ >= write_timeout_) {
      Close(Unavailable(endpoint_text_ + " has not read a request for " + Millis(write_timeout_) +
                        "; the connection was closed as stuck, and the next call reconnects"));
      co_return;
    }
  }
}

Status DaemonConnection::ConnectionLost(const boost::system::error_code& error) const {
  std::string cause;
  if (!daemon_error_.empty()) {
    cause = "the daemon closed it after reporting: " + daemon_error_;
  } else if (error == asio::error::eof) {
    cause = "the daemon closed it";
  } else {
    cause = error.message();
  }
  return Unavailable("the connection to " + endpoint_text_ + " was lost (" + cause +
                     "); a call in flight may or may not have been applied, and the next call "
                     "reconnects");
}

Status DaemonConnection::NotOpen() const {
  if (state_ == State::kClosed && !close_reason_.ok()) return close_reason_;
  return Unavailable("the connection to " + endpoint_text_ +
                     " is not open; the next call reconnects");
}

}  // namespace client_internal
}  // namespace sessiond
