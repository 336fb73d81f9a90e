// Clock: the seam through which replication reads wall-clock time, so tests can drive expiry.
#ifndef SESSIOND_REPLICATION_CLOCK_H_
#define SESSIOND_REPLICATION_CLOCK_H_

#include <chrono>
#include <cstdint>

namespace sessiond {

class Clock {
 public:
  virtual ~Clock() = default;
  // Unix epoch milliseconds. Thread-safe.
  virtual int64_t NowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that moves only when told to. Not thread-safe: tests drive it from one thread.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ms = 1'700'000'000'000) : now_ms_(now_ms) {}
  int64_t NowMs() const override { return now_ms_; }
  void AdvanceMs(int64_t ms) { now_ms_ += ms; }
  void SetMs(int64_t ms) { now_ms_ = ms; }

 private:
  int64_t now_ms_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_CLOCK_H_
