// Histogram against distributions whose percentiles are computed exactly (sorted samples), at every
// supported precision: each reported percentile must be >= the exact one and within the stated
// relative error (below 10^-digits) above it.
#include "tools/bench/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace sessiond::bench {
namespace {

// Percentiles in parts per million, so the exact rank is integer arithmetic.
constexpr int64_t kPercentilesPpm[] = {1,       10'000,  250'000, 500'000, 750'000,
                                       900'000, 990'000, 999'000, 999'900, 999'990};

int64_t ExactPercentile(const std::vector<int64_t>& sorted, int64_t ppm) {
  const int64_t n = static_cast<int64_t>(sorted.size());
  int64_t rank = (ppm * n + 999'999) / 1'000'000;  // ceil(ppm * n / 10^6)
  rank = std::clamp<int64_t>(rank, 1, n);
  return sorted[static_cast<size_t>(rank - 1)];
}

int64_t Pow10(int digits) {
  int64_t p = 1;
  for (int i = 0; i < digits; ++i) p *= 10;
  return p;
}

// Records `samples` in the given order and checks every percentile, min, max, mean and count.
void ExpectWithinStatedError(const std::vector<int64_t>& samples, int digits,
                             const std::string& what) {
  Histogram h(
      HistogramOptions{.highest_trackable = 3'600'000'000'000, .significant_digits = digits});
  for (int64_t v : samples) h.Record(v);
  std::vector<int64_t> sorted = samples;
  std::sort(sorted.begin(), sorted.end());

  ASSERT_EQ(h.TotalCount(), static_cast<int64_t>(samples.size())) << what;
  EXPECT_EQ(h.Min(), sorted.front()) << what;
  EXPECT_EQ(h.Max(), sorted.back()) << what;
  const long double sum = std::accumulate(sorted.begin(), sorted.end(), 0.0L);
  EXPECT_NEAR(h.Mean(), static_cast<double>(sum / sorted.size()), 1e-6 * h.Mean()) << what;

  const int64_t scale = Pow10(digits);
  for (int64_t ppm : kPercentilesPpm) {
    const double percentile = static_cast<double>(ppm) / 10'000.0;
    const int64_t exact = ExactPercentile(sorted, ppm);
    const int64_t reported = h.ValueAtPercentile(percentile);
    EXPECT_GE(reported, exact) << what << " digits=" << digits << " p" << percentile;
    // reported - exact < exact / 10^digits, in integers.
    EXPECT_TRUE(reported == exact || (reported - exact) * scale < exact)
        << what << " digits=" << digits << " p" << percentile << ": exact " << exact
        << ", reported " << reported;
  }
}

// The quantile grid of a distribution: N values at the (i + 0.5) / N quantiles, i.e. exactly the
// distribution's shape with no sampling noise.
template <typename Quantile>
std::vector<int64_t> QuantileGrid(int n, Quantile quantile) {
  std::vector<int64_t> values;
  values.reserve(n);
  for (int i = 0; i < n; ++i) {
    values.push_back(static_cast<int64_t>(std::floor(quantile((i + 0.5) / n))));
  }
  return values;
}

// A uniform double in [0, 1) from 53 random bits: portable, unlike std::uniform_real_distribution.
double UnitDouble(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

class HistogramDistributionTest : public ::testing::TestWithParam<int> {};

TEST_P(HistogramDistributionTest, UniformWithinStatedError) {
  // 0 to 10 ms in nanoseconds.
  auto values = QuantileGrid(200'000, [](double q) { return q * 10'000'000.0; });
  ExpectWithinStatedError(values, GetParam(), "uniform");
}

TEST_P(HistogramDistributionTest, ExponentialWithinStatedError) {
  // Mean 1 ms: a long tail across many buckets.
  auto values = QuantileGrid(200'000, [](double q) { return -1'000'000.0 * std::log1p(-q); });
  ExpectWithinStatedError(values, GetParam(), "exponential");
}

TEST_P(HistogramDistributionTest, BimodalWithinStatedError) {
  // 90% fast hits around 200 us, 10% slow ones around 50 ms, interleaved.
  std::vector<int64_t> values;
  for (int i = 0; i < 200'000; ++i) {
    const double q = (i / 10 + 0.5) / 20'000.0;
    values.push_back(i % 10 == 9 ? static_cast<int64_t>(40'000'000 + q * 20'000'000)
                                 : static_cast<int64_t>(150'000 + q * 100'000));
  }
  ExpectWithinStatedError(values, GetParam(), "bimodal");

  Histogram h(HistogramOptions{.significant_digits = GetParam()});
  for (int64_t v : values) h.Record(v);
  // Within the coarsest stated error (10%) of the fast mode's top, 250 us.
  EXPECT_LE(h.ValueAtPercentile(50), 275'000);
  EXPECT_LE(h.ValueAtPercentile(89.9), 275'000);
  EXPECT_GE(h.ValueAtPercentile(90.1), 40'000'000);
}

TEST_P(HistogramDistributionTest, RandomSamplesInRandomOrderWithinStatedError) {
  std::mt19937_64 rng(20240601);
  std::vector<int64_t> values;
  for (int i = 0; i < 100'000; ++i) {
    // A log-uniform spread over 1 ns .. 10 s exercises every bucket.
    values.push_back(static_cast<int64_t>(std::exp(UnitDouble(rng) * std::log(1e10))));
  }
  ExpectWithinStatedError(values, GetParam(), "log-uniform random");
}

INSTANTIATE_TEST_SUITE_P(AllPrecisions, HistogramDistributionTest, ::testing::Range(1, 6),
                         [](const auto& info) { return "digits" + std::to_string(info.param); });

TEST(HistogramTest, EmptyReportsZero) {
  Histogram h;
  EXPECT_EQ(h.TotalCount(), 0);
  EXPECT_EQ(h.ValueAtPercentile(99), 0);
  EXPECT_EQ(h.Min(), 0);
  EXPECT_EQ(h.Max(), 0);
  EXPECT_EQ(h.Mean(), 0.0);
}

TEST(HistogramTest, SmallValuesAreExact) {
  Histogram h(HistogramOptions{.significant_digits = 2});
  // 2 digits: sub_bucket_half_count = 128, so values below 256 have unit-wide buckets.
  for (int64_t v = 0; v < 256; ++v) {
    EXPECT_EQ(h.LowestEquivalentValue(v), v);
    EXPECT_EQ(h.HighestEquivalentValue(v), v);
  }
  EXPECT_GT(h.HighestEquivalentValue(1000), 1000);
}

TEST(HistogramTest, RecordWithCountEqualsRepeatedRecords) {
  Histogram once, repeated;
  once.Record(12345, 1000);
  once.Record(7, 3);
  for (int i = 0; i < 1000; ++i) repeated.Record(12345);
  for (int i = 0; i < 3; ++i) repeated.Record(7);
  EXPECT_EQ(once.TotalCount(), repeated.TotalCount());
  EXPECT_EQ(once.Mean(), repeated.Mean());
  for (double p : {0.1, 1.0, 50.0, 99.0}) {
    EXPECT_EQ(once.ValueAtPercentile(p), repeated.ValueAtPercentile(p)) << p;
  }
  EXPECT_EQ(once.ValueAtPercentile(0.1), 7);
}

TEST(HistogramTest, MergeOfSameLayoutEqualsRecordingEverything) {
  std::mt19937_64 rng(7);
  Histogram a, b, all;
  for (int i = 0; i < 50'000; ++i) {
    const int64_t v = static_cast<int64_t>(rng() % 50'000'000);
    (i % 3 == 0 ? a : b).Record(v);
    all.Record(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.TotalCount(), all.TotalCount());
  EXPECT_EQ(a.Min(), all.Min());
  EXPECT_EQ(a.Max(), all.Max());
  EXPECT_DOUBLE_EQ(a.Mean(), all.Mean());
  for (double p : {1.0, 50.0, 90.0, 99.0, 99.9, 99.99}) {
    EXPECT_EQ(a.ValueAtPercentile(p), all.ValueAtPercentile(p)) << p;
  }
}

TEST(HistogramTest, MergeOfOtherLayoutStaysWithinBothErrors) {
  auto values = QuantileGrid(50'000, [](double q) { return -1'000'000.0 * std::log1p(-q); });
  Histogram coarse(HistogramOptions{.significant_digits = 2});
  for (int64_t v : values) coarse.Record(v);
  Histogram fine(HistogramOptions{.significant_digits = 3});
  fine.Merge(coarse);
  std::sort(values.begin(), values.end());
  EXPECT_EQ(fine.TotalCount(), 50'000);
  EXPECT_EQ(fine.Max(), values.back());
  for (int64_t ppm : kPercentilesPpm) {
    const int64_t exact = ExactPercentile(values, ppm);
    const int64_t reported = fine.ValueAtPercentile(ppm / 10'000.0);
    EXPECT_GE(reported, exact);
    // (1 + 1/100) * (1 + 1/1000) - 1 < 1.2%.
    EXPECT_LE(static_cast<double>(reported), exact * 1.012 + 1) << ppm;
  }
}

TEST(HistogramTest, ResetForgetsEverything) {
  Histogram h;
  h.Record(5, 10);
  h.Record(int64_t{1} << 50);
  h.Reset();
  EXPECT_EQ(h.TotalCount(), 0);
  EXPECT_EQ(h.saturated(), 0);
  h.Record(42);
  EXPECT_EQ(h.Min(), 42);
  EXPECT_EQ(h.Max(), 42);
  EXPECT_EQ(h.ValueAtPercentile(50), 42);
}

TEST(HistogramTest, ValuesAboveTheRangeSaturateButKeepExactMax) {
  Histogram h(HistogramOptions{.highest_trackable = 1'000'000, .significant_digits = 3});
  for (int i = 0; i < 99; ++i) h.Record(100);
  h.Record(5'000'000);
  EXPECT_EQ(h.saturated(), 1);
  EXPECT_EQ(h.Max(), 5'000'000);
  // The stall still moves the top percentile, to at least the top of the range.
  EXPECT_GE(h.ValueAtPercentile(99.5), 1'000'000);
  EXPECT_EQ(h.ValueAtPercentile(99), 100);
}

TEST(HistogramTest, NegativeValuesRecordAsZero) {
  Histogram h;
  h.Record(-5);
  EXPECT_EQ(h.Min(), 0);
  EXPECT_EQ(h.Max(), 0);
}

TEST(HistogramTest, RecordCorrectedBackfillsTheRequestsAStallHeldBack) {
  Histogram h;
  // A 100 ms stall when a request was due every 10 ms: 9 requests behind it would have waited
  // 90, 80, ..., 10 ms.
  h.RecordCorrected(100, 10);
  EXPECT_EQ(h.TotalCount(), 10);
  EXPECT_EQ(h.Min(), 10);
  EXPECT_EQ(h.Max(), 100);
  EXPECT_EQ(h.ValueAtPercentile(50), 50);

  Histogram fast;
  fast.RecordCorrected(5, 10);  // faster than the interval: nothing was held back
  EXPECT_EQ(fast.TotalCount(), 1);
  Histogram no_interval;
  no_interval.RecordCorrected(100, 0);
  EXPECT_EQ(no_interval.TotalCount(), 1);
}

TEST(HistogramTest, RecordFromIntendedChargesTheWaitBeforeSending) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point intended{std::chrono::seconds(100)};
  Histogram h;
  // Sent 30 ms late, answered 1 ms after the send: the request cost the user 31 ms.
  h.RecordFromIntended(intended, intended + std::chrono::milliseconds(31));
  EXPECT_EQ(h.Max(), 31'000'000);
  h.RecordFromIntended(intended, intended - std::chrono::milliseconds(1));
  EXPECT_EQ(h.Min(), 0);
}

}  // namespace
}  // namespace sessiond::bench
