// Backoff: the waits between reconnection attempts. Doubles from `initial` up to `max`, each
// wait drawn from [wait/2, wait] so that many nodes that lost Redis together do not all come
// back in the same millisecond.
#ifndef SESSIOND_REPLICATION_REDIS_BACKOFF_H_
#define SESSIOND_REPLICATION_REDIS_BACKOFF_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace sessiond {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, uint64_t seed)
      : initial_(initial), max_(std::max(initial, max)), current_(initial), rng_(seed) {}

  // The next wait; each call doubles the one after, up to the maximum.
  std::chrono::milliseconds Next() {
    const auto ceiling = current_;
    current_ = std::min(current_ * 2, max_);
    std::uniform_int_distribution<int64_t> pick(ceiling.count() / 2, ceiling.count());
    return std::chrono::milliseconds(pick(rng_));
  }
  // After a success: the next failure waits `initial` again.
  void Reset() { current_ = initial_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds current_;
  std::minstd_rand rng_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_REDIS_BACKOFF_H_
