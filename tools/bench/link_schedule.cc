#include "tools/bench/link_schedule.h"

#include <algorithm>

namespace sessiond::bench {

LinkSchedule::Clock::time_point LinkSchedule::Release(Clock::time_point now, size_t bytes) {
  Clock::time_point departed = now;
  if (shape_.bandwidth_bytes_per_s > 0) {
    const auto serialization = std::chrono::nanoseconds(static_cast<int64_t>(
        static_cast<long double>(bytes) * 1e9L / shape_.bandwidth_bytes_per_s));
    link_free_ = std::max(link_free_, now) + serialization;
    departed = link_free_;
  }
  std::chrono::microseconds travel = shape_.delay;
  if (shape_.jitter.count() > 0) {
    std::uniform_int_distribution<int64_t> spread(-shape_.jitter.count(), shape_.jitter.count());
    travel += std::chrono::microseconds(spread(rng_));
    travel = std::max(travel, std::chrono::microseconds(0));
  }
  last_release_ = std::max(departed + travel, last_release_);
  return last_release_;
}

}  // namespace sessiond::bench
