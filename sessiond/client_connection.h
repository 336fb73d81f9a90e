// ClientConnection: one client's connection to the daemon, over TCP or a Unix socket.
//
// A reader coroutine reads whatever arrived and cuts it into frames with a FrameDecoder; worker
// coroutines take the decoded requests and answer them, so that pipelined requests are worked
// on together: when a request waits (e.g. on a Redis round trip), another worker takes the ones
// behind it. Workers live as long as the connection rather than one coroutine being spawned per
// request, because spawning costs more than answering a get from memory: with a manager that
// answers at once, one worker drains a whole pipelined batch. Each answer is serialized straight
// into the outgoing buffer; a writer coroutine sends everything queued in one write, one write
// in flight, which coalesces the answers to a pipelined burst into one syscall. Answers may
// leave in another order than their requests came (each carries its request_id).
//
// Bounds: at most `max_inflight` requests are worked on at once and reading pauses while that
// many are, or while `pause_reading_bytes` of output wait to be sent; watch events that pile up
// beyond `max_queued_bytes` (a watcher that does not read) end the connection. Deadlines are
// enforced by the owner's periodic CheckDeadlines call (one sweep for all connections rather than
// a timer per write): a write stuck for `write_timeout`, or a frame begun and not finished within
// `frame_timeout`, ends the connection. An idle connection is fine: clients keep them open.
//
// Bad input: a frame that cannot be decoded, or a payload that is not a ClientRequest, is answered
// once (TOO_LARGE or INVALID_ARGUMENT, request_id 0) and the connection is closed after the answer
// is flushed. A well-formed request with no operation is answered INVALID_ARGUMENT and the
// connection carries on.
//
// Threading: the connection belongs to its socket's executor, the daemon's one event loop; every
// method is called there. It is held by shared_ptr because its coroutines and the owner's
// registry each keep it alive until they are done with it.
#ifndef SESSIOND_SESSIOND_CLIENT_CONNECTION_H_
#define SESSIOND_SESSIOND_CLIENT_CONNECTION_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sessiond/asio.h"
#include "sessiond/connection_context.h"
#include "sessiond/frame.h"
#include "sessiond/metrics.h"
#include "sessiond/request_handler.h"
#include "sessiond/v1/sessiond.pb.h"

namespace sessiond {

struct ConnectionOptions {
  // max_frame_bytes bounds requests received and responses sent alike.
  FrameOptions frames;
  size_t max_inflight = 1024;
  size_t max_watches = 1024;
  size_t pause_reading_bytes = 4u << 20;
  size_t max_queued_bytes = 64u << 20;
  std::chrono::steady_clock::duration write_timeout = std::chrono::seconds(30);
  std::chrono::steady_clock::duration frame_timeout = std::chrono::seconds(30);
  // How long a connection closed after bad input waits for the client to see the answer.
  std::chrono::steady_clock::duration linger_timeout = std::chrono::seconds(2);
  size_t read_buffer_bytes = 64u << 10;
};

class ClientConnection final : public ConnectionContext,
                               public std::enable_shared_from_this<ClientConnection> {
 public:
  using Socket = asio::generic::stream_protocol::socket;

  // `peer` names the client in logs ("127.0.0.1:50312", "unix"). `handler`, `metrics` and
  // `options` must outlive the connection.
  ClientConnection(Socket socket, std::string peer, RequestHandler& handler, Metrics& metrics,
                   const ConnectionOptions& options);
  ~ClientConnection() override;
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Serves the connection until it is closed, by the client, by bad input, Drain() or Abort().
  // Completes only once the socket is closed and none of this connection's handlers is still
  // running, so that the owner can stop the manager after every Run() has completed.
  // REQUIRES: the connection is held by a shared_ptr; called once.
  asio::awaitable<void> Run();

  // Graceful close: reads nothing more, answers the requests already read, flushes, closes.
  void Drain();
  // Closes at once, dropping queued output; `reason` is logged with the client's address.
  void Abort(std::string_view reason);
  // Aborts the connection if a write or a partly received frame has missed its deadline.
  // The owner calls it periodically (about once a second).
  void CheckDeadlines(std::chrono::steady_clock::time_point now);

  const std::string& peer() const { return peer_; }

  // ConnectionContext.
  void PushWatchEvent(uint64_t watch_request_id, const v1::SessionEvent& event) override;
  Status AdoptWatch(std::unique_ptr<WatchHandle> handle) override;

 private:
  // A request and its response, reused across requests to spare the allocator.
  struct Slot {
    v1::ClientRequest request;
    v1::ClientResponse response;
  };
  using TimePoint = std::chrono::steady_clock::time_point;

  asio::awaitable<void> ReadLoop();
  asio::awaitable<void> WriteLoop(std::shared_ptr<ClientConnection> self);
  // Works on decoded requests one after another until the connection ends. A connection has
  // as many workers as it has requests waiting at once (at least one): see WakeWorker.
  asio::awaitable<void> Worker(std::shared_ptr<ClientConnection> self);
  // Wakes an idle worker for the pending requests, or starts one if none is idle.
  void WakeWorker();
  // Queues the answer of a request whose handler completed (or threw: then INTERNAL).
  void Finish(std::unique_ptr<Slot> slot, std::exception_ptr error);
  // Takes whole frames out of the decoder and starts their handlers while below max_inflight.
  // Returns false after bad input (answered; the connection is closing).
  bool DecodeFrames();
  // Reads and discards what the client still sends after an answer to bad input, so that
  // closing does not reset the connection before the client has read that answer.
  asio::awaitable<void> Linger();

  // Serializes `response` as one frame onto the outgoing buffer and wakes the writer.
  void QueueResponse(const v1::ClientResponse& response);
  // Answers bad input with `status` and stops reading; the writer closes after the flush.
  void RejectInput(const Status& status, uint64_t request_id);
  bool ReaderMayContinue() const;
  size_t QueuedBytes() const { return out_.size() + writing_.size(); }
  std::unique_ptr<Slot> TakeSlot();
  void ReturnSlot(std::unique_ptr<Slot> slot);
  // Closes the socket and wakes every coroutine of the connection so that each ends.
  void Stop();
  void CloseSocket();
  // Waits until `timer` is cancelled (the wake-up signal between this connection's coroutines).
  static asio::awaitable<void> WaitForWake(asio::steady_timer& timer);

  Socket socket_;
  const std::string peer_;
  RequestHandler& handler_;
  Metrics& metrics_;
  const ConnectionOptions& options_;

  FrameDecoder decoder_;
  std::unique_ptr<char[]> read_buffer_;
  std::string payload_;                        // the frame being parsed, reused
  std::string out_;                            // queued frames, not yet handed to a write
  std::string writing_;                        // the frames of the write in flight
  v1::ClientResponse event_response_;          // reused for watch events
  std::deque<std::unique_ptr<Slot>> pending_;  // decoded, not yet taken by a worker
  std::vector<std::unique_ptr<Slot>> free_slots_;
  std::vector<std::unique_ptr<WatchHandle>> watches_;

  asio::steady_timer writer_wake_;
  asio::steady_timer reader_wake_;
  asio::steady_timer work_wake_;
  asio::steady_timer done_wake_;

  size_t inflight_ = 0;  // requests decoded and not yet answered
  size_t workers_ = 0;
  size_t idle_workers_ = 0;
  bool reading_ = true;  // false once the reader has stopped for good
  bool reader_paused_ = false;
  bool writer_waiting_ = false;
  bool writer_running_ = false;
  bool draining_ = false;
  bool rejected_ = false;  // bad input answered: linger, then close
  bool aborted_ = false;
  TimePoint write_started_{};  // of the write in flight; epoch when none
  TimePoint frame_started_{};  // when the decoder began holding a partial frame; epoch when none
  TimePoint linger_started_{};
};

}  // namespace sessiond

#endif  // SESSIOND_SESSIOND_CLIENT_CONNECTION_H_
