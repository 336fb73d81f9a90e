// PeerLink: one TCP connection between two nodes of a cluster.
//
// A link runs the handshake (PeerHandshake), then carries PeerEnvelopes both ways, one per
// frame (sessiond/frame.h: length-prefixed, lz4 above a size threshold). It has a reader and a
// writer coroutine, a bounded outbound queue with at most one write in flight (all queued frames
// go out in that one gathered write), and deadlines on every read and write, enforced by a
// watchdog that closes the socket when one passes.
//
// States:
//
//   kHandshaking --handshake ok--> kEstablished --Drain() or peer EOF--> kDraining
//        |                               |                                   |
//        +-- refused / error / deadline -+-- Close(), error, deadline -------+--> kClosed
//
// kDraining sends nothing new: it writes what is queued, half-closes, and reads (and delivers)
// until the peer's end of stream or the drain deadline. Two nodes retire a duplicate link this
// way without losing what either had already sent on it.
//
// The link reports to an Observer (its PeerNetwork). OnLinkClosed is called exactly once, last,
// unless Detach() was called first. Observer calls may call back into the link, Close included.
//
// Threading: a link belongs to the executor of its socket; call it only from there. It is owned
// by shared_ptr: its coroutines hold a reference until they end.
#ifndef SESSIOND_REPLICATION_CLUSTER_PEER_LINK_H_
#define SESSIOND_REPLICATION_CLUSTER_PEER_LINK_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "replication/cluster/node_identity.h"
#include "replication/cluster/peer_handshake.h"
#include "sessiond/asio.h"
#include "sessiond/frame.h"
#include "sessiond/peer/v1/peer.pb.h"
#include "sessiond/status.h"

namespace sessiond {

struct PeerLinkOptions {
  FrameOptions frames;
  // The whole handshake must finish within this.
  std::chrono::milliseconds handshake_timeout{2000};
  // An established link on which no byte arrives for this long is closed. Heartbeats flow far
  // more often, so only a dead or wedged peer trips it.
  std::chrono::milliseconds read_timeout{2000};
  // One write (of everything queued at that moment) must finish within this.
  std::chrono::milliseconds write_timeout{2000};
  // Bounds of the outbound queue (the write in flight included). A send beyond either is refused
  // with RESOURCE_EXHAUSTED: the caller decides what a refused message means.
  size_t max_queue_frames = 8192;
  size_t max_queue_bytes = 64u << 20;
};

// Totals over a link's life. Bytes are on the wire (frame headers and compression included).
struct LinkCounters {
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  // Sends refused because the queue was full.
  uint64_t queue_full = 0;
  // Frames still queued when the link closed: never sent.
  uint64_t dropped_on_close = 0;

  LinkCounters& operator+=(const LinkCounters& other);
};

class PeerLink : public std::enable_shared_from_this<PeerLink> {
 public:
  using Role = PeerHandshake::Role;
  enum class State { kHandshaking, kEstablished, kDraining, kClosed };

  class Observer {
   public:
    virtual ~Observer() = default;
    // The handshake completed; link.peer() says who is at the other end.
    virtual void OnLinkEstablished(PeerLink& link) = 0;
    // The handshake failed: refused by this side (`by_peer` false: the reason was logged here
    // and sent in a Refuse) or by the other side. OnLinkClosed follows.
    virtual void OnLinkRefused(PeerLink& link, peer::v1::RefuseReason reason, const Status& why,
                               bool by_peer) = 0;
    // A message arrived on an established or draining link.
    virtual void OnLinkMessage(PeerLink& link, const peer::v1::PeerEnvelope& envelope) = 0;
    // The link is closed: OK for a graceful close (drained, or closed locally with OK), else why.
    virtual void OnLinkClosed(PeerLink& link, const Status& why) = 0;
  };

  // Takes a connected socket. `observer` is not owned and must stay valid until OnLinkClosed
  // or Detach(). Call Start() next.
  PeerLink(asio::ip::tcp::socket socket, Role role, HandshakeConfig handshake,
           PeerLinkOptions options, Observer* observer);
  ~PeerLink();
  PeerLink(const PeerLink&) = delete;
  PeerLink& operator=(const PeerLink&) = delete;

  // Starts the handshake, then the reader and writer. Call once, on the link's executor.
  void Start();

  // Queues `envelope` for sending. UNAVAILABLE unless kEstablished; RESOURCE_EXHAUSTED when the
  // queue is full (nothing queued); TOO_LARGE when it exceeds the frame limit.
  Status Send(const peer::v1::PeerEnvelope& envelope);
  // Queues an already encoded frame (one taken from another link by TakeQueued), under the
  // same rules as Send.
  Status SendFrame(std::string frame);
  // Removes and returns the frames queued but not yet handed to the socket, oldest first.
  std::deque<std::string> TakeQueued();

  // Graceful close (see kDraining). A link still handshaking is closed at once.
  void Drain();
  // Closes now; queued frames are dropped (and counted). Idempotent.
  void Close(const Status& why);
  // The observer is not called again. For an owner that goes away before its links.
  void Detach() { observer_ = nullptr; }

  Role role() const { return role_; }
  State state() const { return state_; }
  // The other side's identity. Valid from OnLinkEstablished on.
  const PeerIdentity& peer() const { return handshake_.peer(); }
  // See PeerHandshake::dialer_nonce().
  const std::string& dialer_nonce() const { return handshake_.dialer_nonce(); }
  // "ip:port" of the other end of the socket.
  const std::string& remote_address() const { return remote_address_; }
  const LinkCounters& counters() const { return counters_; }
  // Current depth of the outbound queue, the write in flight included.
  size_t queue_frames() const { return queued_sizes_.size() + in_flight_frames_; }
  size_t queue_bytes() const { return queued_.size() + in_flight_.size(); }

 private:
  using TimePoint = std::chrono::steady_clock::time_point;

  asio::awaitable<void> Run(std::shared_ptr<PeerLink> self);
  asio::awaitable<Status> Handshake();
  asio::awaitable<void> ReadLoop();
  asio::awaitable<void> WriteLoop(std::shared_ptr<PeerLink> self);
  asio::awaitable<void> Watchdog(std::shared_ptr<PeerLink> self);

  // Reads until one whole envelope is decoded (the handshake's reads; the read deadline is the
  // handshake's).
  asio::awaitable<Status> ReadEnvelope(peer::v1::PeerEnvelope& envelope);
  // Takes the next envelope out of what was read: kFrame, kNeedMore, or kError with `error`
  // set (a frame that does not parse is an error too).
  FrameDecoder::State DecodeEnvelope(peer::v1::PeerEnvelope& envelope, Status& error);
  // Handles the end of one socket read: feeds the decoder, or says why the link cannot go on
  // (the peer's end of stream sets peer_finished_).
  Status TakeRead(const boost::system::error_code& ec, size_t n);
  // Writes one envelope now, bypassing the queue (handshake only).
  asio::awaitable<Status> WriteDirect(const peer::v1::PeerEnvelope& envelope);
  // Refuses the handshake: tells the observer, sends a Refuse (best effort), closes.
  asio::awaitable<void> Refuse(peer::v1::RefuseReason reason, const Status& why);

  // Arms one deadline and wakes the watchdog if it is now the earliest.
  void SetDeadline(TimePoint& which, TimePoint when);
  // Counts a refused send and says why.
  Status QueueFull(std::optional<size_t> frame_bytes);  // nullopt: refused by count
  // Records a frame of `frame_bytes` just appended to queued_, and wakes the writer.
  void Queued(size_t frame_bytes);
  // Closes once both directions have finished while draining.
  void MaybeFinishDrain();
  const std::string& peer_name() const;

  asio::ip::tcp::socket socket_;
  const Role role_;
  PeerHandshake handshake_;
  const PeerLinkOptions options_;
  Observer* observer_;
  State state_ = State::kHandshaking;
  std::string remote_address_;

  FrameDecoder decoder_;
  std::vector<char> read_buffer_;

  // The frames queued, back to back, and the size of each. Sends serialize straight into it.
  std::string queued_;
  std::vector<size_t> queued_sizes_;
  // The frames of the write in flight (the buffers trade places at each write).
  std::string in_flight_;
  size_t in_flight_frames_ = 0;
  asio::steady_timer writer_wake_;
  bool writer_waiting_ = false;  // the writer waits on writer_wake_ for something to write

  // Deadlines; TimePoint::max() when not armed.
  TimePoint read_deadline_ = TimePoint::max();
  TimePoint write_deadline_ = TimePoint::max();
  TimePoint drain_deadline_ = TimePoint::max();
  asio::steady_timer watchdog_;

  bool drain_started_locally_ = false;
  bool peer_finished_ = false;    // the peer's end of stream was read
  bool writes_finished_ = false;  // this side half-closed after draining
  LinkCounters counters_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_CLUSTER_PEER_LINK_H_
