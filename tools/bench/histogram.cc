#include "tools/bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <limits>

namespace sessiond::bench {

Histogram::Histogram(HistogramOptions options) : options_(options) {
  assert(options_.significant_digits >= 1 && options_.significant_digits <= 5);
  assert(options_.highest_trackable >= 2);
  int64_t largest_single_unit = 2;
  for (int i = 0; i < options_.significant_digits; ++i) largest_single_unit *= 10;
  // Smallest power of two that holds every value with single-unit resolution.
  const int sub_bucket_count_magnitude =
      static_cast<int>(std::bit_width(static_cast<uint64_t>(largest_single_unit - 1)));
  sub_bucket_half_count_magnitude_ = sub_bucket_count_magnitude - 1;
  sub_bucket_count_ = int64_t{1} << sub_bucket_count_magnitude;
  sub_bucket_half_count_ = sub_bucket_count_ / 2;
  sub_bucket_mask_ = sub_bucket_count_ - 1;

  // Each bucket doubles the covered range; count how many reach highest_trackable.
  int64_t smallest_untrackable = sub_bucket_count_;
  int buckets = 1;
  while (smallest_untrackable <= options_.highest_trackable) {
    if (smallest_untrackable > std::numeric_limits<int64_t>::max() / 2) {
      ++buckets;
      break;
    }
    smallest_untrackable <<= 1;
    ++buckets;
  }
  bucket_count_ = buckets;
  counts_.assign(static_cast<size_t>(bucket_count_ + 1) * sub_bucket_half_count_, 0);
}

int Histogram::BucketIndex(int64_t value) const {
  // The position of the highest set bit, counted past the bits a sub-bucket resolves exactly.
  const int pow2_ceiling =
      std::bit_width(static_cast<uint64_t>(value) | static_cast<uint64_t>(sub_bucket_mask_));
  return pow2_ceiling - (sub_bucket_half_count_magnitude_ + 1);
}

int Histogram::SubBucketIndex(int64_t value, int bucket_index) const {
  return static_cast<int>(value >> bucket_index);
}

size_t Histogram::CountsIndex(int64_t value) const {
  const int bucket = BucketIndex(value);
  const int sub = SubBucketIndex(value, bucket);
  // Bucket 0 uses all sub_bucket_count slots; each later bucket only its upper half, since its
  // lower half is covered (at finer resolution) by the bucket before it.
  return (static_cast<size_t>(bucket + 1) << sub_bucket_half_count_magnitude_) +
         static_cast<size_t>(sub - sub_bucket_half_count_);
}

int64_t Histogram::ValueFromIndex(size_t counts_index) const {
  int bucket = static_cast<int>(counts_index >> sub_bucket_half_count_magnitude_) - 1;
  int64_t sub =
      static_cast<int64_t>(counts_index & static_cast<size_t>(sub_bucket_half_count_ - 1)) +
      sub_bucket_half_count_;
  if (bucket < 0) {
    sub -= sub_bucket_half_count_;
    bucket = 0;
  }
  return sub << bucket;
}

int64_t Histogram::EquivalentRangeSize(int64_t value) const {
  const int bucket = BucketIndex(value);
  const int sub = SubBucketIndex(value, bucket);
  const int adjusted = sub >= sub_bucket_count_ ? bucket + 1 : bucket;
  return int64_t{1} << adjusted;
}

int64_t Histogram::LowestEquivalentValue(int64_t value) const {
  value = std::clamp<int64_t>(value, 0, options_.highest_trackable);
  const int bucket = BucketIndex(value);
  return static_cast<int64_t>(SubBucketIndex(value, bucket)) << bucket;
}

int64_t Histogram::HighestEquivalentValue(int64_t value) const {
  value = std::clamp<int64_t>(value, 0, options_.highest_trackable);
  return LowestEquivalentValue(value) + EquivalentRangeSize(value) - 1;
}

void Histogram::Record(int64_t value, int64_t count) {
  if (count <= 0) return;
  value = std::max<int64_t>(value, 0);
  int64_t bucketed = value;
  if (value > options_.highest_trackable) {
    bucketed = options_.highest_trackable;
    saturated_ += count;
  }
  counts_[CountsIndex(bucketed)] += count;
  if (total_count_ == 0) {
    min_ = value;
    max_ = value;
  } else {
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }
  total_count_ += count;
  sum_ += static_cast<__int128>(value) * count;
}

void Histogram::RecordFromIntended(std::chrono::steady_clock::time_point intended,
                                   std::chrono::steady_clock::time_point completed) {
  Record(std::chrono::duration_cast<std::chrono::nanoseconds>(completed - intended).count());
}

void Histogram::RecordCorrected(int64_t value, int64_t expected_interval) {
  Record(value);
  if (expected_interval <= 0) return;
  for (int64_t missing = value - expected_interval; missing >= expected_interval;
       missing -= expected_interval) {
    Record(missing);
  }
}

bool Histogram::SameLayout(const Histogram& other) const {
  return counts_.size() == other.counts_.size() &&
         sub_bucket_half_count_ == other.sub_bucket_half_count_ &&
         options_.highest_trackable == other.options_.highest_trackable;
}

void Histogram::Merge(const Histogram& other) {
  if (other.total_count_ == 0) return;
  if (SameLayout(other)) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  } else {
    for (size_t i = 0; i < other.counts_.size(); ++i) {
      if (other.counts_[i] == 0) continue;
      const int64_t value = std::min(other.HighestEquivalentValue(other.ValueFromIndex(i)),
                                     options_.highest_trackable);
      counts_[CountsIndex(value)] += other.counts_[i];
    }
  }
  if (total_count_ == 0) {
    min_ = other.min_;
    max_ = other.max_;
  } else {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
  total_count_ += other.total_count_;
  sum_ += other.sum_;
  saturated_ += other.saturated_;
}

void Histogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_count_ = 0;
  min_ = 0;
  max_ = 0;
  sum_ = 0;
  saturated_ = 0;
}

double Histogram::Mean() const {
  if (total_count_ == 0) return 0.0;
  return static_cast<double>(static_cast<long double>(sum_) / total_count_);
}

int64_t Histogram::ValueAtPercentile(double percentile) const {
  if (total_count_ == 0) return 0;
  percentile = std::clamp(percentile, 0.0, 100.0);
  if (percentile == 0.0) return min_;
  if (percentile == 100.0) return max_;
  // The rank of the value: the smallest k with k >= percentile% of the count. The small
  // allowance keeps an exact product (99.9% of 1000 = 999) from rounding up to the next rank.
  const long double exact = static_cast<long double>(percentile) / 100.0L * total_count_;
  int64_t rank = static_cast<int64_t>(std::ceil(exact - 1e-9L));
  rank = std::clamp<int64_t>(rank, 1, total_count_);
  int64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      // Never beyond the exact extremes, which are known.
      return std::clamp(HighestEquivalentValue(ValueFromIndex(i)), min_, max_);
    }
  }
  return max_;
}

}  // namespace sessiond::bench
