// LinkSchedule: when each chunk of bytes crossing one direction of an emulated network link
// arrives at the far end.
//
// A chunk is first serialized onto the link (at `bandwidth_bytes_per_s`, when capped: chunks queue
// behind each other as on a real wire), then travels for `delay` plus a jitter drawn uniformly from
// [-jitter, +jitter] (never below zero). A chunk never overtakes the one before it: TCP delivers in
// order, so a chunk whose own sample would arrive earlier is held until its predecessor arrives,
// as a real path's queueing makes it.
//
// Threading: not thread-safe; one per link direction, used on that link's executor.
#ifndef SESSIOND_TOOLS_BENCH_LINK_SCHEDULE_H_
#define SESSIOND_TOOLS_BENCH_LINK_SCHEDULE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>

namespace sessiond::bench {

// The shape of one direction of a link.
struct LinkShape {
  std::chrono::microseconds delay{0};   // one-way latency added to every chunk
  std::chrono::microseconds jitter{0};  // +/- uniform, per chunk
  uint64_t bandwidth_bytes_per_s = 0;   // 0 = unlimited
};

class LinkSchedule {
 public:
  using Clock = std::chrono::steady_clock;

  // `seed` makes the jitter reproducible.
  LinkSchedule(LinkShape shape, uint64_t seed) : shape_(shape), rng_(seed) {}

  // The time at which a chunk of `bytes` that arrived from the sender at `now` is due at the far
  // end. Calls must come in arrival order (non-decreasing `now`); the results are non-decreasing.
  Clock::time_point Release(Clock::time_point now, size_t bytes);

  const LinkShape& shape() const { return shape_; }

 private:
  LinkShape shape_;
  std::mt19937_64 rng_;
  Clock::time_point link_free_{};     // when the (capped) link finishes serializing what it has
  Clock::time_point last_release_{};  // the previous chunk's release: later ones never precede it
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_LINK_SCHEDULE_H_
