// Histogram: a log-linear histogram of non-negative integer values (latencies in nanoseconds),
// laid out as HdrHistogram is (no such library is packaged for Debian).
//
// Values are counted in buckets whose width grows with the value: the range [2^k, 2^(k+1)) is cut
// into `sub_bucket_half_count` equal slots, where sub_bucket_half_count is the smallest power of
// two >= 10^significant_digits. Hence:
//
//   Stated error. For every recorded value v, the value the histogram reports for it
//   (ValueAtPercentile, and the bucket bounds used by Merge) is v' with v <= v' and
//   v' - v < v / 10^significant_digits (v' == v when v < 2 * sub_bucket_half_count).
//   So with 3 significant digits every percentile is at most 0.1% above the exact one and never
//   below it. Min(), Max(), Mean() and TotalCount() are exact (kept outside the buckets).
//
// Values above `highest_trackable` are counted in the top bucket (so they still move the upper
// percentiles) and counted by saturated(); Max() still reports them exactly. A benchmark must
// never drop a stall because it was large.
//
// Memory: (bucket_count + 1) * sub_bucket_half_count counters of 8 bytes; with 3 digits and a
// range of 1 ns to 1 hour that is 2048 * 33 * 8 ~= 270 KiB.
//
// Threading: not thread-safe. Each worker thread owns one histogram and they are merged at the end
// (Merge), as HdrHistogram recommends for recorders on hot paths.
#ifndef SESSIOND_TOOLS_BENCH_HISTOGRAM_H_
#define SESSIOND_TOOLS_BENCH_HISTOGRAM_H_

#include <chrono>
#include <cstdint>
#include <vector>

namespace sessiond::bench {

struct HistogramOptions {
  // The largest value recorded exactly into the buckets; larger ones saturate (see above).
  // Default: one hour in nanoseconds.
  int64_t highest_trackable = 3'600'000'000'000;
  // 1 to 5: the relative error is below 10^-significant_digits.
  int significant_digits = 3;
};

class Histogram {
 public:
  // REQUIRES: 1 <= options.significant_digits <= 5, options.highest_trackable >= 2.
  explicit Histogram(HistogramOptions options = {});

  // Counts `value` `count` times. Negative values are recorded as 0 (a clock that stepped back).
  void Record(int64_t value, int64_t count = 1);

  // Records how long a request took from when it was *meant* to be sent, not from when it was
  // sent. An open-loop load generator that fell behind (the server stalled, or the generator
  // itself did) sends late; measuring from the actual send hides the wait of every request that
  // queued behind the stall ("coordinated omission"). Measuring from the intended time charges it.
  // `completed` earlier than `intended` records 0.
  void RecordFromIntended(std::chrono::steady_clock::time_point intended,
                          std::chrono::steady_clock::time_point completed);

  // For closed-loop callers that know the interval at which they meant to issue requests:
  // records `value`, then, as HdrHistogram's recordValueWithExpectedInterval does, the
  // values value - interval, value - 2*interval, ... down to (excluding) `expected_interval`,
  // standing for the requests that a stall of length `value` kept from being sent.
  // expected_interval <= 0 records `value` alone.
  void RecordCorrected(int64_t value, int64_t expected_interval);

  // Adds every count of `other` to this one. Histograms of the same options add bucket by bucket;
  // others are re-recorded at each bucket's highest equivalent value (within the stated error).
  void Merge(const Histogram& other);

  // Forgets every recorded value; keeps the options.
  void Reset();

  // The smallest recorded value v' such that at least `percentile`% of the recorded values are
  // <= the value v' stands for; reported as the highest value of its bucket (see Stated error).
  // 0 when empty. `percentile` is clamped to [0, 100]; 0 returns Min(), 100 returns Max().
  int64_t ValueAtPercentile(double percentile) const;

  // Exact. 0 when empty.
  int64_t Min() const { return total_count_ == 0 ? 0 : min_; }
  int64_t Max() const { return total_count_ == 0 ? 0 : max_; }
  double Mean() const;
  int64_t TotalCount() const { return total_count_; }
  // Values recorded above highest_trackable.
  int64_t saturated() const { return saturated_; }

  // Bucket arithmetic, public so tests and reports can state the error of a given value.
  // The smallest and largest values counted in the same bucket as `value`.
  int64_t LowestEquivalentValue(int64_t value) const;
  int64_t HighestEquivalentValue(int64_t value) const;

  const HistogramOptions& options() const { return options_; }

 private:
  int BucketIndex(int64_t value) const;
  int SubBucketIndex(int64_t value, int bucket_index) const;
  size_t CountsIndex(int64_t value) const;
  int64_t ValueFromIndex(size_t counts_index) const;
  int64_t EquivalentRangeSize(int64_t value) const;
  bool SameLayout(const Histogram& other) const;

  HistogramOptions options_;
  int sub_bucket_half_count_magnitude_ = 0;
  int64_t sub_bucket_count_ = 0;
  int64_t sub_bucket_half_count_ = 0;
  int64_t sub_bucket_mask_ = 0;
  int bucket_count_ = 0;
  std::vector<int64_t> counts_;

  int64_t total_count_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
  // Exact sum for Mean(); 128 bits so hours of nanosecond latencies cannot overflow it.
  __int128 sum_ = 0;
  int64_t saturated_ = 0;
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_HISTOGRAM_H_
