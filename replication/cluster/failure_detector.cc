#include "replication/cluster/failure_detector.h"

#include <fmt/format.h>

#include <algorithm>

namespace sessiond {

Status FailureDetectorOptions::Validate() const {
  if (suspect_after_ms <= 0 || dead_after_ms < suspect_after_ms) {
    return InvalidArgument(
        fmt::format("failure detection needs 0 < suspect time <= dead time, got {} ms and {} ms",
                    suspect_after_ms, dead_after_ms));
  }
  return Status::Ok();
}

FailureDetector::FailureDetector(FailureDetectorOptions options) : options_(options) {}

void FailureDetector::Heard(std::string_view node_id, int64_t now_ms) {
  auto it = last_heard_ms_.find(node_id);
  if (it == last_heard_ms_.end()) {
    last_heard_ms_.emplace(std::string(node_id), now_ms);
  } else {
    // Clocks can step back; a sign of life never makes a peer look older.
    it->second = std::max(it->second, now_ms);
  }
}

void FailureDetector::Forget(std::string_view node_id) {
  auto it = last_heard_ms_.find(node_id);
  if (it != last_heard_ms_.end()) last_heard_ms_.erase(it);
}

FailureDetector::Verdict FailureDetector::Check(std::string_view node_id, int64_t now_ms) const {
  auto it = last_heard_ms_.find(node_id);
  if (it == last_heard_ms_.end()) return Verdict::kDead;
  const int64_t silent_ms = now_ms - it->second;
  if (silent_ms >= options_.dead_after_ms) return Verdict::kDead;
  if (silent_ms >= options_.suspect_after_ms) return Verdict::kSuspect;
  return Verdict::kAlive;
}

std::optional<int64_t> FailureDetector::last_heard_ms(std::string_view node_id) const {
  auto it = last_heard_ms_.find(node_id);
  if (it == last_heard_ms_.end()) return std::nullopt;
  return it->second;
}

}  // namespace sessiond
