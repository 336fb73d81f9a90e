// FailureDetector: decides, from when each peer was last heard, whether it is alive, suspect or
// dead.
//
// A missed-heartbeat detector with two thresholds: a peer silent for suspect_after_ms is
// suspect (still a member: modes keep waiting on it), one silent for dead_after_ms is dead.
// Every message counts as a sign of life; heartbeats guarantee there is one at least every
// heartbeat interval, so the thresholds are a number of missed heartbeats. Time is passed in by
// the caller, so tests move it by hand and never sleep.
//
// Threading: not thread-safe; owned by one event loop.
#ifndef SESSIOND_REPLICATION_CLUSTER_FAILURE_DETECTOR_H_
#define SESSIOND_REPLICATION_CLUSTER_FAILURE_DETECTOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "sessiond/status.h"

namespace sessiond {

struct FailureDetectorOptions {
  // With heartbeats every 200 ms and a tick at each, a silent peer is dead within 2 s.
  int64_t suspect_after_ms = 1000;
  int64_t dead_after_ms = 1800;

  // INVALID_ARGUMENT unless 0 < suspect_after_ms <= dead_after_ms.
  Status Validate() const;
};

class FailureDetector {
 public:
  enum class Verdict { kAlive, kSuspect, kDead };

  // REQUIRES: options.Validate().ok().
  explicit FailureDetector(FailureDetectorOptions options);

  // Records a sign of life from `node_id` at `now_ms`; starts watching it if new.
  void Heard(std::string_view node_id, int64_t now_ms);
  // Stops watching `node_id` (it left).
  void Forget(std::string_view node_id);

  // The verdict on `node_id` at `now_ms`. A node never heard from is dead.
  Verdict Check(std::string_view node_id, int64_t now_ms) const;
  // When `node_id` was last heard from, if it is watched.
  std::optional<int64_t> last_heard_ms(std::string_view node_id) const;

  const FailureDetectorOptions& options() const { return options_; }

 private:
  FailureDetectorOptions options_;
  std::map<std::string, int64_t, std::less<>> last_heard_ms_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_CLUSTER_FAILURE_DETECTOR_H_
