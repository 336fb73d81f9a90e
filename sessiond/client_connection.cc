#include "sessiond/client_connection.h"

#include <spdlog/spdlog.h>

#include <utility>

#include "replication/log_errors.h"

namespace sessiond {
namespace {

using std::chrono::duration_cast;
using std::chrono::seconds;

// Buffers that grew past this for one large answer are given back rather than kept.
constexpr size_t kKeptBufferBytes = 1u << 20;
// Spare request/response pairs a connection keeps for reuse.
constexpr size_t kKeptSlots = 64;
// What a lingering close reads and discards at most before giving up on the client.
constexpr size_t kMaxLingerBytes = 1u << 20;

bool IsOrdinaryClose(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::operation_aborted ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::bad_descriptor;
}

}  // namespace

ClientConnection::ClientConnection(Socket socket, std::string peer, RequestHandler& handler,
                                   Metrics& metrics, const ConnectionOptions& options)
    : socket_(std::move(socket)),
      peer_(std::move(peer)),
      handler_(handler),
      metrics_(metrics),
      options_(options),
      decoder_(options.frames),
      read_buffer_(new char[options.read_buffer_bytes]),
      writer_wake_(socket_.get_executor()),
      reader_wake_(socket_.get_executor()),
      work_wake_(socket_.get_executor()),
      done_wake_(socket_.get_executor()) {
  // Idle workers wait on this timer until cancel_one() (one request batch) or cancel() (the end).
  work_wake_.expires_at(asio::steady_timer::time_point::max());
}

ClientConnection::~ClientConnection() {
  // End the watches first: their sinks point at this connection.
  watches_.clear();
}

asio::awaitable<void> ClientConnection::Run() {
  std::shared_ptr<ClientConnection> self = shared_from_this();
  writer_running_ = true;
  asio::co_spawn(socket_.get_executor(), WriteLoop(self), LogErrors("client connection writer"));
  co_await ReadLoop();
  reading_ = false;
  work_wake_.cancel();  // idle workers end; busy ones finish what was read, then end
  writer_wake_.cancel();
  while (writer_running_ || workers_ > 0) co_await WaitForWake(done_wake_);
}

void ClientConnection::Drain() {
  if (draining_ || aborted_) return;
  draining_ = true;
  // Ends a pending read with end-of-file; what the client sends from now on is not read.
  boost::system::error_code ignored;
  socket_.shutdown(Socket::shutdown_receive, ignored);
  reader_wake_.cancel();
}

void ClientConnection::Abort(std::string_view reason) {
  if (aborted_) return;
  spdlog::info("closing client connection {}: {}", peer_, reason);
  Stop();
}

void ClientConnection::Stop() {
  if (aborted_) return;
  aborted_ = true;
  out_.clear();
  inflight_ -= pending_.size();
  pending_.clear();
  work_wake_.cancel();
  CloseSocket();
  reader_wake_.cancel();
  writer_wake_.cancel();
  done_wake_.cancel();
}

void ClientConnection::CheckDeadlines(TimePoint now) {
  if (aborted_) return;
  if (write_started_ != TimePoint{} && now - write_started_ > options_.write_timeout) {
    Abort(
        fmt::format("a write of {} bytes has not completed in {} s; the client is not reading "
                    "its responses",
                    writing_.size(), duration_cast<seconds>(options_.write_timeout).count()));
  } else if (linger_started_ != TimePoint{} && now - linger_started_ > options_.linger_timeout) {
    Abort("the client did not close after its bad input was answered");
  } else if (frame_started_ != TimePoint{} && !reader_paused_ &&
             now - frame_started_ > options_.frame_timeout) {
    Abort(fmt::format("a frame was begun but not finished within {} s ({} bytes of it arrived)",
                      duration_cast<seconds>(options_.frame_timeout).count(), decoder_.buffered()));
  }
}

void ClientConnection::PushWatchEvent(uint64_t watch_request_id, const v1::SessionEvent& event) {
  if (aborted_) return;
  event_response_.set_request_id(watch_request_id);
  *event_response_.mutable_event() = event;
  QueueResponse(event_response_);
  if (QueuedBytes() > options_.max_queued_bytes) {
    // Closing (not dropping events) keeps the watch's promise: what a watcher sees is complete
    // until its connection ends.
    Abort(
        fmt::format("watch events arrive faster than the client reads them ({} bytes queued, "
                    "the most a connection may hold is {})",
                    QueuedBytes(), options_.max_queued_bytes));
  }
}

Status ClientConnection::AdoptWatch(std::unique_ptr<WatchHandle> handle) {
  if (watches_.size() >= options_.max_watches) {
    return ResourceExhausted(fmt::format(
        "this connection already holds {} watches, the most one may; watch several ids with one "
        "request, or every session with an empty list",
        watches_.size()));
  }
  watches_.push_back(std::move(handle));
  return Status::Ok();
}

asio::awaitable<void> ClientConnection::ReadLoop() {
  for (;;) {
    if (!DecodeFrames() || aborted_ || draining_) co_return;
    if (!ReaderMayContinue()) {
      reader_paused_ = true;
      co_await WaitForWake(reader_wake_);
      reader_paused_ = false;
      continue;
    }
    boost::system::error_code ec;
    const size_t n = co_await socket_.async_read_some(
        asio::buffer(read_buffer_.get(), options_.read_buffer_bytes),
        asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!IsOrdinaryClose(ec)) spdlog::debug("client {}: read failed: {}", peer_, ec.message());
      co_return;
    }
    metrics_.BytesReceived(n);
    decoder_.Feed(std::string_view(read_buffer_.get(), n));
  }
}

bool ClientConnection::DecodeFrames() {
  bool decoded_any = false;
  while (inflight_ < options_.max_inflight && !aborted_) {
    const FrameDecoder::State state = decoder_.Next(&payload_);
    if (state == FrameDecoder::State::kNeedMore) break;
    if (state == FrameDecoder::State::kError) {
      metrics_.BadFrame();
      RejectInput(Status(decoder_.error().code(),
                         decoder_.error().message() + "; the daemon closes the connection"),
                  0);
      return false;
    }
    decoded_any = true;
    metrics_.FramesReceived(1);
    std::unique_ptr<Slot> slot = TakeSlot();
    if (!slot->request.ParseFromString(payload_)) {
      metrics_.BadFrame();
      ReturnSlot(std::move(slot));
      RejectInput(InvalidArgument(fmt::format(
                      "a frame's payload ({} bytes) is not a sessiond.v1.ClientRequest; check that "
                      "the client speaks the sessiond protocol. The daemon closes the connection",
                      payload_.size())),
                  0);
      return false;
    }
    ++inflight_;
    pending_.push_back(std::move(slot));
  }
  if (!pending_.empty()) WakeWorker();
  // The frame deadline runs from the first byte of a frame that has not finished arriving.
  if (decoded_any || decoder_.buffered() == 0) frame_started_ = TimePoint{};
  if (decoder_.buffered() > 0 && frame_started_ == TimePoint{}) {
    frame_started_ = std::chrono::steady_clock::now();
  }
  return true;
}

void ClientConnection::WakeWorker() {
  if (idle_workers_ > 0) {
    work_wake_.cancel_one();
  } else if (workers_ < options_.max_inflight) {
    // Every worker is waiting on a request (e.g. a Redis round trip): add one, so that the
    // requests behind it are worked on meanwhile. Workers stay until the connection ends.
    ++workers_;
    asio::co_spawn(socket_.get_executor(), Worker(shared_from_this()),
                   LogErrors("client request worker"));
  }
}

asio::awaitable<void> ClientConnection::Worker(std::shared_ptr<ClientConnection> /*keep_alive*/) {
  while (!aborted_) {
    if (pending_.empty()) {
      if (!reading_) break;
      ++idle_workers_;
      boost::system::error_code ignored;
      co_await work_wake_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      --idle_workers_;
      continue;
    }
    std::unique_ptr<Slot> slot = std::move(pending_.front());
    pending_.pop_front();
    // Should this request wait, another worker takes the ones behind it. With a manager that
    // answers at once this worker drains the batch itself and the other finds nothing to do.
    if (!pending_.empty()) WakeWorker();
    std::exception_ptr error;
    try {
      co_await handler_.Handle(slot->request, *this, slot->response);
    } catch (...) {
      error = std::current_exception();
    }
    Finish(std::move(slot), error);
  }
  --workers_;
  if (workers_ == 0) done_wake_.cancel();
}

void ClientConnection::Finish(std::unique_ptr<Slot> slot, std::exception_ptr error) {
  --inflight_;
  if (error) {
    // A manager bug costs one request, not the daemon and every other connection.
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("request {} of client {} failed with an exception: {}",
                  slot->request.request_id(), peer_, what);
    slot->response.Clear();
    slot->response.set_request_id(slot->request.request_id());
    slot->response.set_status(v1::INTERNAL);
    slot->response.set_error("the daemon failed this request (" + what +
                             "); this is a bug: report it with the daemon's log");
  }
  if (!aborted_) QueueResponse(slot->response);
  ReturnSlot(std::move(slot));
  if (reader_paused_ && ReaderMayContinue()) reader_wake_.cancel();
  if (!reading_ && inflight_ == 0) writer_wake_.cancel();
}

asio::awaitable<void> ClientConnection::WriteLoop(
    std::shared_ptr<ClientConnection> /*keep_alive*/) {
  while (!aborted_) {
    if (out_.empty()) {
      if (!reading_ && inflight_ == 0) break;  // drained: nothing more will be answered
      writer_waiting_ = true;
      co_await WaitForWake(writer_wake_);
      writer_waiting_ = false;
      continue;
    }
    writing_.swap(out_);
    write_started_ = std::chrono::steady_clock::now();
    boost::system::error_code ec;
    const size_t n = co_await asio::async_write(socket_, asio::buffer(writing_),
                                                asio::redirect_error(asio::use_awaitable, ec));
    write_started_ = TimePoint{};
    metrics_.BytesSent(n);
    if (ec) {
      if (!aborted_) {
        if (IsOrdinaryClose(ec)) {
          spdlog::debug("client {} closed the connection before reading its answers", peer_);
          Stop();
        } else {
          Abort("writing to the client failed: " + ec.message());
        }
      }
      break;
    }
    writing_.clear();
    if (writing_.capacity() > kKeptBufferBytes) std::string().swap(writing_);
    if (reader_paused_ && ReaderMayContinue()) reader_wake_.cancel();
  }
  if (!aborted_ && rejected_) co_await Linger();
  CloseSocket();
  writer_running_ = false;
  done_wake_.cancel();
}

asio::awaitable<void> ClientConnection::Linger() {
  boost::system::error_code ec;
  socket_.shutdown(Socket::shutdown_send, ec);
  linger_started_ = std::chrono::steady_clock::now();
  size_t discarded = 0;
  while (!aborted_ && !ec && discarded < kMaxLingerBytes) {
    discarded += co_await socket_.async_read_some(
        asio::buffer(read_buffer_.get(), options_.read_buffer_bytes),
        asio::redirect_error(asio::use_awaitable, ec));
  }
  linger_started_ = TimePoint{};
}

void ClientConnection::QueueResponse(const v1::ClientResponse& response) {
  const size_t before = out_.size();
  if (Status status = AppendMessageFrame(out_, response, options_.frames); !status.ok()) {
    out_.resize(before);
    v1::ClientResponse too_large;
    too_large.set_request_id(response.request_id());
    too_large.set_status(v1::TOO_LARGE);
    too_large.set_error(fmt::format(
        "the answer to request {} would be {} bytes, more than the daemon's --max-frame-bytes "
        "({}); ask for less at once (fewer or smaller attributes, fewer sessions per principal)",
        response.request_id(), response.ByteSizeLong(), options_.frames.max_frame_bytes));
    (void)AppendMessageFrame(out_, too_large, options_.frames);
  }
  metrics_.FramesSent(1);
  if (writer_waiting_) writer_wake_.cancel();
}

void ClientConnection::RejectInput(const Status& status, uint64_t request_id) {
  spdlog::info("client {} sent bad input: {}", peer_, status.ToString());
  v1::ClientResponse response;
  response.set_request_id(request_id);
  response.set_status(status.code());
  response.set_error(status.message());
  QueueResponse(response);
  rejected_ = true;
}

bool ClientConnection::ReaderMayContinue() const {
  return aborted_ || draining_ ||
         (inflight_ < options_.max_inflight && QueuedBytes() < options_.pause_reading_bytes);
}

std::unique_ptr<ClientConnection::Slot> ClientConnection::TakeSlot() {
  if (free_slots_.empty()) return std::make_unique<Slot>();
  std::unique_ptr<Slot> slot = std::move(free_slots_.back());
  free_slots_.pop_back();
  return slot;
}

void ClientConnection::ReturnSlot(std::unique_ptr<Slot> slot) {
  if (free_slots_.size() < kKeptSlots) free_slots_.push_back(std::move(slot));
}

void ClientConnection::CloseSocket() {
  if (!socket_.is_open()) return;
  boost::system::error_code ignored;
  socket_.shutdown(Socket::shutdown_both, ignored);
  socket_.close(ignored);
}

asio::awaitable<void> ClientConnection::WaitForWake(asio::steady_timer& timer) {
  timer.expires_at(asio::steady_timer::time_point::max());
  boost::system::error_code ignored;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

}  // namespace sessiond
