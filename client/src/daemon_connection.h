// DaemonConnection: one connection from a client to a sessiond, and the calls pipelined on it.
//
// States (a connection never goes back; the AsyncClient opens a new one instead):
//
//   kConnecting --Connect() succeeds--> kOpen --read/write error, EOF, bad frame, Close()-->
//   kClosed kConnecting --Connect() fails, times out, or Close()------------------------------->
//   kClosed
//
// While open, a reader coroutine decodes responses and completes the pending call with the same
// request_id (or hands a pushed event to its watch), and a writer coroutine sends everything
// queued since its last write in one write, so that pipelined calls share system calls. Closing
// fails every pending call and ends every watch with the reason, then tells the owner.
//
// Threading: a connection belongs to one executor; call every method from it.
#ifndef SESSIOND_CLIENT_SRC_DAEMON_CONNECTION_H_
#define SESSIOND_CLIENT_SRC_DAEMON_CONNECTION_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "sessiond/asio.h"
#include "sessiond/async_client.h"
#include "sessiond/endpoint.h"
#include "sessiond/frame.h"
#include "sessiond/status.h"
#include "sessiond/v1/sessiond.pb.h"

namespace sessiond {
// Private to the client library; the namespace keeps its names off the daemon's.
namespace client_internal {

// Where a watch's pushed events go. Shared, so that a watch cancelled from inside its own
// on_event stays alive until that call returns.
struct WatchHandlers {
  std::function<void(const v1::SessionEvent&)> on_event;
  std::function<void(const Status&)> on_end;
};

class DaemonConnection : public std::enable_shared_from_this<DaemonConnection> {
 public:
  using Clock = std::chrono::steady_clock;
  // Called once, when the connection closes, after its calls and watches have been ended.
  using CloseHandler = std::function<void(DaemonConnection&)>;

  // Does not connect yet; see Connect(). Takes what it needs from `options`.
  DaemonConnection(asio::any_io_executor executor, Endpoint endpoint, const ClientOptions& options,
                   CloseHandler on_close);
  ~DaemonConnection();
  DaemonConnection(const DaemonConnection&) = delete;
  DaemonConnection& operator=(const DaemonConnection&) = delete;

  // Connects within options.connect_timeout, then starts the reader and the writer. On failure
  // returns UNAVAILABLE with a sentence naming the endpoint and the cause, and the connection is
  // closed. REQUIRES: state kConnecting; the caller holds a shared_ptr to this connection.
  asio::awaitable<Status> Connect();

  // Queues `request` (whose request_id the caller made unique on this connection) and waits for
  // its response until `deadline`; `budget` is the deadline's length, for the error message.
  // Returns the response whatever its status; UNAVAILABLE when the connection is not open, breaks
  // before the answer, or the deadline passes first (a late answer is then dropped).
  // With `watch` set and an OK answer, the watch is registered before any event after that answer
  // is read, so none is missed. REQUIRES: the caller holds a shared_ptr until this returns.
  asio::awaitable<Result<v1::ClientResponse>> Call(v1::ClientRequest request,
                                                   Clock::time_point deadline,
                                                   std::chrono::milliseconds budget,
                                                   std::shared_ptr<WatchHandlers> watch = nullptr);

  // Stops delivering a watch's events; its on_end is not called. Unknown ids are ignored.
  void CancelWatch(uint64_t request_id);

  // Closes the socket: pending calls fail and watches end with `reason` (UNAVAILABLE), then the
  // close handler runs. Safe to call in any state, and again.
  void Close(const Status& reason);

  bool open() const { return state_ == State::kOpen; }
  const Endpoint& endpoint() const { return endpoint_; }

 private:
  enum class State { kConnecting, kOpen, kClosed };
  using Socket = asio::generic::stream_protocol::socket;
  struct PendingCall;

  // Resolves and connects the socket; the connect timer aborts it by closing the socket.
  asio::awaitable<boost::system::error_code> ConnectSocket();
  asio::awaitable<void> ReadLoop();
  asio::awaitable<void> WriteLoop();
  // Closes the connection when one write has been in progress longer than the write timeout.
  asio::awaitable<void> WatchWrites();
  void Dispatch(v1::ClientResponse response);
  Status ConnectionLost(const boost::system::error_code& error) const;
  Status NotOpen() const;

  const asio::any_io_executor executor_;
  const Endpoint endpoint_;
  const std::string endpoint_text_;
  const FrameOptions frame_options_;
  const std::chrono::milliseconds connect_timeout_;
  const std::chrono::milliseconds write_timeout_;
  CloseHandler on_close_;

  State state_ = State::kConnecting;
  Status close_reason_;
  Socket socket_;
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer connect_timer_;
  bool connect_timed_out_ = false;

  // Writer: frames queue in outbox_ while in_flight_ is being written; the two swap per write.
  std::string outbox_;
  std::string in_flight_;
  bool writing_ = false;
  Clock::time_point write_started_;
  asio::steady_timer writer_wakeup_;  // never expires; cancelled to wake an idle writer
  asio::steady_timer write_watchdog_;

  FrameDecoder decoder_;
  std::array<char, 64 * 1024> read_buffer_;
  // The last error the daemon reported with request_id 0, which it sends just before closing.
  std::string daemon_error_;

  // Keyed by request_id. A PendingCall lives in its Call coroutine's frame and removes itself.
  std::unordered_map<uint64_t, PendingCall*> pending_;
  std::unordered_map<uint64_t, std::shared_ptr<WatchHandlers>> watches_;
};

}  // namespace client_internal
}  // namespace sessiond

#endif  // SESSIOND_CLIENT_SRC_DAEMON_CONNECTION_H_
