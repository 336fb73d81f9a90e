// Metrics: what the daemon counts about its clients, rendered for /metrics in the Prometheus text
// format.
//
// Requests per operation and status, latency histograms per operation, connections, bytes and
// frames in each direction, and frames that could not be decoded. The manager's own numbers
// (sessions held, mode counters) are rendered beside them from its NodeStats.
//
// Threading: single-threaded; owned by the event loop, and every method is called on it. That is
// why plain integers suffice: the daemon's hot path pays no atomics for its metrics.
#ifndef SESSIOND_SESSIOND_METRICS_H_
#define SESSIOND_SESSIOND_METRICS_H_

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sessiond/latency_histogram.h"
#include "sessiond/v1/sessiond.pb.h"

namespace sessiond {

class Metrics {
 public:
  // The operations of the client protocol, in the order of ClientRequest's oneof.
  enum class Op {
    kCreate,
    kGet,
    kUpdate,
    kInvalidate,
    kRotateId,
    kFindByPrincipal,
    kWatch,
    kPing,
    kStats,
  };
  static constexpr size_t kOpCount = 9;

  // "create", "get", ... as the `op` label shows it.
  static std::string_view OpName(Op op);

  // One answered request: its status and the time from decoding it to queuing its response.
  void RecordRequest(Op op, v1::StatusCode status, std::chrono::nanoseconds latency);
  // A request whose op was not set (answered INVALID_ARGUMENT).
  void RecordRequestWithoutOp() { ++requests_without_op_; }

  void ConnectionOpened() {
    ++connections_current_;
    ++connections_total_;
  }
  void ConnectionClosed() { --connections_current_; }
  // A connection turned away because --max-connections were open.
  void ConnectionRefused() { ++connections_refused_; }

  void BytesReceived(size_t n) { bytes_in_ += n; }
  void BytesSent(size_t n) { bytes_out_ += n; }
  void FramesReceived(size_t n) { frames_in_ += n; }
  void FramesSent(size_t n) { frames_out_ += n; }
  // A frame that failed to decode or whose payload was not a ClientRequest.
  void BadFrame() { ++bad_frames_; }

  uint64_t requests(Op op, v1::StatusCode status) const;
  uint64_t connections_current() const { return connections_current_; }
  uint64_t connections_total() const { return connections_total_; }
  uint64_t bad_frames() const { return bad_frames_; }
  const LatencyHistogram& latency(Op op) const { return latency_[static_cast<size_t>(op)]; }

  // The Prometheus text exposition of these metrics followed by the manager's `stats` (sessions
  // held, mode counters) and its readiness.
  std::string RenderPrometheus(const v1::NodeStats& stats, bool ready) const;

 private:
  static constexpr size_t kStatusCount = 9;  // v1::StatusCode values OK..INTERNAL

  std::array<std::array<uint64_t, kStatusCount>, kOpCount> requests_{};
  std::array<LatencyHistogram, kOpCount> latency_{};
  uint64_t requests_without_op_ = 0;
  uint64_t connections_current_ = 0;
  uint64_t connections_total_ = 0;
  uint64_t connections_refused_ = 0;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  uint64_t frames_in_ = 0;
  uint64_t frames_out_ = 0;
  uint64_t bad_frames_ = 0;
};

}  // namespace sessiond

#endif  // SESSIOND_SESSIOND_METRICS_H_
