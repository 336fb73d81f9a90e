#include "replication/cluster/peer_link.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <utility>

#include "replication/log_errors.h"

namespace sessiond {
namespace {

using Envelope = peer::v1::PeerEnvelope;
using asio::ip::tcp;

constexpr size_t kReadChunkBytes = 64u << 10;
// A write buffer grown beyond this by a burst is released after the write.
constexpr size_t kKeptWriteBufferBytes = 1u << 20;

auto Now() { return std::chrono::steady_clock::now(); }

}  // namespace

LinkCounters& LinkCounters::operator+=(const LinkCounters& other) {
  bytes_in += other.bytes_in;
  bytes_out += other.bytes_out;
  frames_in += other.frames_in;
  frames_out += other.frames_out;
  queue_full += other.queue_full;
  dropped_on_close += other.dropped_on_close;
  return *this;
}

PeerLink::PeerLink(tcp::socket socket, Role role, HandshakeConfig handshake,
                   PeerLinkOptions options, Observer* observer)
    : socket_(std::move(socket)),
      role_(role),
      handshake_(std::move(handshake), role),
      options_(options),
      observer_(observer),
      decoder_(options.frames),
      read_buffer_(kReadChunkBytes),
      writer_wake_(socket_.get_executor()),
      watchdog_(socket_.get_executor()) {
  boost::system::error_code ec;
  const tcp::endpoint remote = socket_.remote_endpoint(ec);
  remote_address_ = ec ? std::string("unknown")
                       : fmt::format("{}:{}", remote.address().to_string(), remote.port());
  // Deltas are small and latency-bound; the writer already batches what is queued.
  socket_.set_option(tcp::no_delay(true), ec);
  // The writer's direct write returns would_block rather than block when the socket is full.
  socket_.non_blocking(true, ec);
}

PeerLink::~PeerLink() = default;

void PeerLink::Start() {
  // During the handshake the read deadline bounds the whole exchange.
  read_deadline_ = Now() + options_.handshake_timeout;
  asio::co_spawn(socket_.get_executor(), Watchdog(shared_from_this()),
                 LogErrors("peer link watchdog"));
  asio::co_spawn(socket_.get_executor(), Run(shared_from_this()), LogErrors("peer link"));
}

const std::string& PeerLink::peer_name() const {
  return handshake_.peer().node_id.empty() ? remote_address_ : handshake_.peer().node_id;
}

asio::awaitable<void> PeerLink::Run(std::shared_ptr<PeerLink> self) {
  const Status handshake = co_await Handshake();
  if (!handshake.ok() || state_ == State::kClosed) co_return;
  state_ = State::kEstablished;
  read_deadline_ = TimePoint::max();  // ReadLoop arms it per read from now on
  asio::co_spawn(socket_.get_executor(), WriteLoop(self), LogErrors("peer link writer"));
  if (observer_ != nullptr) observer_->OnLinkEstablished(*this);
  if (state_ == State::kClosed) co_return;
  co_await ReadLoop();
}

asio::awaitable<Status> PeerLink::Handshake() {
  Envelope out;
  Envelope in;
  // Reads a handshake message, handling the peer's Refuse. Returns false when the link closed.
  auto receive = [&]() -> asio::awaitable<bool> {
    if (Status s = co_await ReadEnvelope(in); !s.ok()) {
      if (s.code() == v1::UNAVAILABLE) {
        Close(s);  // the connection broke: nothing to refuse
      } else {
        co_await Refuse(peer::v1::MALFORMED, s);  // not our protocol: a stray client
      }
      co_return false;
    }
    if (in.has_refuse()) {
      const Status why = Unavailable(fmt::format("peer {} refused the link ({}): {}", peer_name(),
                                                 peer::v1::RefuseReason_Name(in.refuse().reason()),
                                                 in.refuse().detail()));
      if (observer_ != nullptr) observer_->OnLinkRefused(*this, in.refuse().reason(), why, true);
      Close(why);
      co_return false;
    }
    co_return true;
  };
  auto send = [&]() -> asio::awaitable<bool> {
    if (Status s = co_await WriteDirect(out); !s.ok()) {
      Close(s);
      co_return false;
    }
    co_return true;
  };
  const Status closed = Unavailable("the link closed during the handshake");

  if (role_ == Role::kDialer) {
    Result<peer::v1::Hello> hello = handshake_.MakeHello();
    if (!hello.ok()) {
      co_await Refuse(handshake_.failure_reason(), hello.status());
      co_return hello.status();
    }
    *out.mutable_hello() = std::move(*hello);
    if (!co_await send() || !co_await receive()) co_return closed;
    if (!in.has_hello_ack()) {
      const Status why =
          InvalidArgument(fmt::format("peer {} answered a Hello with something other than a "
                                      "HelloAck; is it a sessiond peer port?",
                                      remote_address_));
      co_await Refuse(peer::v1::MALFORMED, why);
      co_return why;
    }
    Result<peer::v1::HelloProof> proof = handshake_.OnHelloAck(in.hello_ack());
    if (!proof.ok()) {
      co_await Refuse(handshake_.failure_reason(), proof.status());
      co_return proof.status();
    }
    out.Clear();
    *out.mutable_hello_proof() = std::move(*proof);
    if (!co_await send()) co_return closed;
    co_return Status::Ok();
  }

  if (!co_await receive()) co_return closed;
  if (!in.has_hello()) {
    const Status why = InvalidArgument(
        fmt::format("{} opened a link without a Hello; is it a sessiond of the same release?",
                    remote_address_));
    co_await Refuse(peer::v1::MALFORMED, why);
    co_return why;
  }
  Result<peer::v1::HelloAck> ack = handshake_.OnHello(in.hello());
  if (!ack.ok()) {
    co_await Refuse(handshake_.failure_reason(), ack.status());
    co_return ack.status();
  }
  *out.mutable_hello_ack() = std::move(*ack);
  if (!co_await send() || !co_await receive()) co_return closed;
  if (!in.has_hello_proof()) {
    const Status why = InvalidArgument(fmt::format(
        "peer {} answered a HelloAck with something other than a HelloProof", peer_name()));
    co_await Refuse(peer::v1::MALFORMED, why);
    co_return why;
  }
  if (Status s = handshake_.OnHelloProof(in.hello_proof()); !s.ok()) {
    co_await Refuse(handshake_.failure_reason(), s);
    co_return s;
  }
  co_return Status::Ok();
}

asio::awaitable<void> PeerLink::Refuse(peer::v1::RefuseReason reason, const Status& why) {
  if (state_ == State::kClosed) co_return;
  if (observer_ != nullptr) observer_->OnLinkRefused(*this, reason, why, false);
  Envelope refuse;
  refuse.mutable_refuse()->set_reason(reason);
  refuse.mutable_refuse()->set_detail(why.message());
  // Best effort: the other side learns why, if it still listens.
  (void)co_await WriteDirect(refuse);
  Close(why);
}

FrameDecoder::State PeerLink::DecodeEnvelope(Envelope& envelope, Status& error) {
  std::string_view payload;
  const FrameDecoder::State state = decoder_.NextView(&payload);
  switch (state) {
    case FrameDecoder::State::kFrame:
      ++counters_.frames_in;
      // Parsed where it lies in the decoder's buffer: no copy of the payload first.
      if (!envelope.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        error = InvalidArgument(fmt::format(
            "peer {} sent a frame that is not a PeerEnvelope; closing the link", peer_name()));
        return FrameDecoder::State::kError;
      }
      break;
    case FrameDecoder::State::kError:
      error = Status(decoder_.error().code(),
                     fmt::format("bad frame from peer {}: {}; closing the link", peer_name(),
                                 decoder_.error().message()));
      break;
    case FrameDecoder::State::kNeedMore:
      break;
  }
  return state;
}

Status PeerLink::TakeRead(const boost::system::error_code& ec, size_t n) {
  if (ec == asio::error::eof) {
    peer_finished_ = true;
    return Unavailable(fmt::format("peer {} closed the link", peer_name()));
  }
  if (ec) {
    return Unavailable(fmt::format("reading from peer {} failed: {}", peer_name(), ec.message()));
  }
  counters_.bytes_in += n;
  decoder_.Feed(std::string_view(read_buffer_.data(), n));
  return Status::Ok();
}

asio::awaitable<Status> PeerLink::ReadEnvelope(Envelope& envelope) {
  Status error;
  for (;;) {
    switch (DecodeEnvelope(envelope, error)) {
      case FrameDecoder::State::kFrame:
        co_return Status::Ok();
      case FrameDecoder::State::kError:
        co_return error;
      case FrameDecoder::State::kNeedMore:
        break;
    }
    if (state_ == State::kClosed) co_return Unavailable("the link is closed");
    boost::system::error_code ec;
    const size_t n = co_await socket_.async_read_some(
        asio::buffer(read_buffer_), asio::redirect_error(asio::use_awaitable, ec));
    if (Status s = TakeRead(ec, n); !s.ok()) co_return s;
  }
}

asio::awaitable<Status> PeerLink::WriteDirect(const Envelope& envelope) {
  if (state_ == State::kClosed) co_return Unavailable("the link is closed");
  std::string frame;
  if (Status s = AppendMessageFrame(frame, envelope, options_.frames); !s.ok()) co_return s;
  SetDeadline(write_deadline_, Now() + options_.write_timeout);
  boost::system::error_code ec;
  const size_t n = co_await asio::async_write(socket_, asio::buffer(frame),
                                              asio::redirect_error(asio::use_awaitable, ec));
  write_deadline_ = TimePoint::max();
  if (ec) {
    co_return Unavailable(fmt::format("writing to peer {} failed: {}", peer_name(), ec.message()));
  }
  counters_.bytes_out += n;
  ++counters_.frames_out;
  co_return Status::Ok();
}

asio::awaitable<void> PeerLink::ReadLoop() {
  // The frames of one read are decoded and delivered here, and the socket read here, rather
  // than through ReadEnvelope: a coroutine call per frame is a heap allocation per frame.
  for (;;) {
    if (state_ == State::kClosed) co_return;  // closed meanwhile: nothing more is decoded
    Envelope envelope;
    Status s;
    const FrameDecoder::State decoded = DecodeEnvelope(envelope, s);
    if (decoded == FrameDecoder::State::kFrame) {
      if (observer_ != nullptr) observer_->OnLinkMessage(*this, envelope);
      if (state_ == State::kClosed) co_return;
      continue;
    }
    if (decoded == FrameDecoder::State::kNeedMore) {
      if (state_ == State::kClosed) co_return;
      SetDeadline(read_deadline_, Now() + options_.read_timeout);
      boost::system::error_code ec;
      const size_t n = co_await socket_.async_read_some(
          asio::buffer(read_buffer_), asio::redirect_error(asio::use_awaitable, ec));
      s = TakeRead(ec, n);
      if (s.ok()) continue;
    }
    if (state_ == State::kClosed) co_return;
    if (!peer_finished_) {
      Close(s);
      co_return;
    }
    // The peer half-closed: answer in kind once what is queued here is written.
    read_deadline_ = TimePoint::max();
    if (state_ == State::kEstablished) {
      state_ = State::kDraining;
      SetDeadline(drain_deadline_, Now() + options_.read_timeout);
      writer_wake_.cancel();
    }
    MaybeFinishDrain();
    co_return;
  }
}

asio::awaitable<void> PeerLink::WriteLoop(std::shared_ptr<PeerLink> /*self*/) {
  while (state_ == State::kEstablished || state_ == State::kDraining) {
    boost::system::error_code ec;
    if (queued_sizes_.empty()) {
      if (state_ == State::kDraining) {
        socket_.shutdown(tcp::socket::shutdown_send, ec);
        writes_finished_ = true;
        MaybeFinishDrain();
        co_return;
      }
      writer_wake_.expires_at(TimePoint::max());
      writer_waiting_ = true;
      co_await writer_wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      writer_waiting_ = false;
      continue;
    }
    // Everything queued goes out in one write: the batching that makes many small messages
    // cheap. The frames lie back to back in one buffer, which the next turn's frames reuse.
    in_flight_.swap(queued_);
    queued_.clear();
    in_flight_frames_ = queued_sizes_.size();
    queued_sizes_.clear();
    // Written at once when the socket has room, which it almost always has: an awaited write
    // would complete just as soon, but through one more turn of the event loop.
    // (Only on a non-blocking socket: a blocking write to a full socket would stall the loop,
    // the watchdog with it.)
    size_t n = socket_.non_blocking() ? socket_.write_some(asio::buffer(in_flight_), ec) : 0;
    if (ec == asio::error::would_block) {
      ec.clear();
      n = 0;
    }
    if (!ec && n < in_flight_.size()) {
      SetDeadline(write_deadline_, Now() + options_.write_timeout);
      n += co_await asio::async_write(socket_, asio::buffer(in_flight_) + n,
                                      asio::redirect_error(asio::use_awaitable, ec));
      write_deadline_ = TimePoint::max();
    }
    if (state_ == State::kClosed) co_return;
    if (ec) {
      Close(Unavailable(fmt::format("writing to peer {} failed: {}", peer_name(), ec.message())));
      co_return;
    }
    counters_.bytes_out += n;
    counters_.frames_out += in_flight_frames_;
    in_flight_frames_ = 0;
    in_flight_.clear();
    // A burst (a state transfer) does not pin its buffer for the link's life.
    if (in_flight_.capacity() > kKeptWriteBufferBytes) std::string().swap(in_flight_);
  }
}

asio::awaitable<void> PeerLink::Watchdog(std::shared_ptr<PeerLink> /*self*/) {
  while (state_ != State::kClosed) {
    const TimePoint deadline = std::min({read_deadline_, write_deadline_, drain_deadline_});
    const TimePoint now = Now();
    if (now >= deadline) {
      if (state_ == State::kHandshaking) {
        const Status why =
            Unavailable(fmt::format("the handshake with {} did not finish within {} ms",
                                    peer_name(), options_.handshake_timeout.count()));
        if (observer_ != nullptr) {
          observer_->OnLinkRefused(*this, peer::v1::HANDSHAKE_TIMEOUT, why, false);
        }
        Close(why);
      } else if (now >= write_deadline_) {
        Close(Unavailable(
            fmt::format("a write to peer {} did not finish within {} ms: the peer is not reading",
                        peer_name(), options_.write_timeout.count())));
      } else if (now >= drain_deadline_) {
        Close(Unavailable(fmt::format("peer {} did not finish closing within {} ms", peer_name(),
                                      options_.read_timeout.count())));
      } else {
        Close(Unavailable(fmt::format("nothing heard from peer {} for {} ms: it is down or wedged",
                                      peer_name(), options_.read_timeout.count())));
      }
      co_return;
    }
    watchdog_.expires_at(deadline);
    boost::system::error_code ec;
    co_await watchdog_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

void PeerLink::SetDeadline(TimePoint& which, TimePoint when) {
  which = when;
  // The watchdog sleeps until the earliest deadline it saw; wake it to look again.
  if (when < watchdog_.expiry()) watchdog_.cancel();
}

Status PeerLink::Send(const Envelope& envelope) {
  if (state_ != State::kEstablished) {
    return Unavailable(fmt::format("the link to peer {} is not established", peer_name()));
  }
  // Refuse before paying for serialization when the queue is already full by count.
  if (queue_frames() >= options_.max_queue_frames) return QueueFull(std::nullopt);
  // A state-transfer chunk carries its own lz4 block: a second pass saves a few percent of it
  // for an lz4 compress on this loop and a decompress on the peer's.
  FrameOptions frames = options_.frames;
  if (envelope.body_case() == Envelope::kStateTransferChunk) frames.compress_threshold = 0;
  // Serialized straight onto the end of the queue.
  const size_t start = queued_.size();
  if (Status s = AppendMessageFrame(queued_, envelope, frames); !s.ok()) return s;
  const size_t size = queued_.size() - start;
  if (queue_bytes() > options_.max_queue_bytes) {
    queued_.resize(start);
    return QueueFull(size);
  }
  Queued(size);
  return Status::Ok();
}

Status PeerLink::SendFrame(std::string frame) {
  if (state_ != State::kEstablished) {
    return Unavailable(fmt::format("the link to peer {} is not established", peer_name()));
  }
  if (queue_frames() + 1 > options_.max_queue_frames ||
      queue_bytes() + frame.size() > options_.max_queue_bytes) {
    return QueueFull(frame.size());
  }
  queued_.append(frame);
  Queued(frame.size());
  return Status::Ok();
}

Status PeerLink::QueueFull(std::optional<size_t> frame_bytes) {
  ++counters_.queue_full;
  const std::string what =
      frame_bytes ? fmt::format("{} more bytes", *frame_bytes) : std::string("another frame");
  return ResourceExhausted(
      fmt::format("the link to peer {} has {} frames ({} bytes) waiting, no room for {}; the "
                  "peer is slower than this node's sends",
                  peer_name(), queue_frames(), queue_bytes(), what));
}

void PeerLink::Queued(size_t frame_bytes) {
  queued_sizes_.push_back(frame_bytes);
  // The first frame of a turn wakes the writer; it takes the others along.
  if (writer_waiting_) {
    writer_waiting_ = false;
    writer_wake_.cancel();
  }
}

std::deque<std::string> PeerLink::TakeQueued() {
  std::deque<std::string> frames;
  size_t offset = 0;
  for (const size_t size : queued_sizes_) {
    frames.emplace_back(queued_, offset, size);
    offset += size;
  }
  queued_.clear();
  queued_sizes_.clear();
  return frames;
}

void PeerLink::Drain() {
  if (state_ == State::kHandshaking) {
    Close(Status::Ok());
    return;
  }
  if (state_ != State::kEstablished) return;
  drain_started_locally_ = true;
  state_ = State::kDraining;
  SetDeadline(drain_deadline_, Now() + options_.read_timeout);
  writer_wake_.cancel();
}

void PeerLink::MaybeFinishDrain() {
  if (state_ != State::kDraining || !peer_finished_ || !writes_finished_) return;
  Close(drain_started_locally_ ? Status::Ok()
                               : Unavailable(fmt::format("peer {} closed the link", peer_name())));
}

void PeerLink::Close(const Status& why) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  counters_.dropped_on_close += queued_sizes_.size() + in_flight_frames_;
  queued_.clear();
  queued_sizes_.clear();
  // in_flight_ stays: the cancelled write still refers to it until its handler runs.
  boost::system::error_code ec;
  socket_.close(ec);
  writer_wake_.cancel();
  watchdog_.cancel();
  if (Observer* observer = std::exchange(observer_, nullptr)) observer->OnLinkClosed(*this, why);
}

}  // namespace sessiond
