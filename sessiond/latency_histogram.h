// LatencyHistogram: request latencies in fixed buckets, the shape Prometheus histograms take.
//
// The buckets run from 25 microseconds to 10 seconds, roughly 1-2.5-5 per decade, which covers
// both an in-memory get on loopback and a Redis round trip under load. Recording is a short
// linear scan and two additions; not thread-safe (owned by the event loop).
#ifndef SESSIOND_SESSIOND_LATENCY_HISTOGRAM_H_
#define SESSIOND_SESSIOND_LATENCY_HISTOGRAM_H_

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sessiond {

class LatencyHistogram {
 public:
  // Upper bounds of the buckets in nanoseconds; one more, unbounded (+Inf), follows them.
  static constexpr std::array<int64_t, 18> kBoundsNs = {
      25'000,      50'000,      100'000,       250'000,       500'000,       1'000'000,
      2'500'000,   5'000'000,   10'000'000,    25'000'000,    50'000'000,    100'000'000,
      250'000'000, 500'000'000, 1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};

  void Record(std::chrono::nanoseconds latency);

  uint64_t count() const { return count_; }
  // Sum of all recorded latencies.
  std::chrono::nanoseconds sum() const { return std::chrono::nanoseconds(sum_ns_); }
  // Observations in bucket `i` alone (not cumulative); i == kBoundsNs.size() is +Inf.
  uint64_t bucket(size_t i) const { return buckets_[i]; }

  // Appends the Prometheus text lines of this histogram: cumulative `name_bucket{labels,le=..}`,
  // `name_sum{labels}` (seconds) and `name_count{labels}`. `labels` is `op="get"` or empty.
  void AppendPrometheus(std::string& out, std::string_view name, std::string_view labels) const;

 private:
  std::array<uint64_t, kBoundsNs.size() + 1> buckets_{};
  uint64_t count_ = 0;
  int64_t sum_ns_ = 0;
};

}  // namespace sessiond

#endif  // SESSIOND_SESSIOND_LATENCY_HISTOGRAM_H_
