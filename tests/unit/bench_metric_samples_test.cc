// MetricSamples: the Prometheus text format as sessiond's /metrics writes it.
#include <gtest/gtest.h>

#include <cmath>

#include "tools/bench/metric_samples.h"
#include "tools/bench/workload_options.h"

namespace sessiond::bench {
namespace {

constexpr char kExposition[] = R"(# HELP sessiond_sessions Sessions this node holds.
# TYPE sessiond_sessions gauge
sessiond_sessions 1200
# TYPE sessiond_peer_bytes_sent_total counter
sessiond_peer_bytes_sent_total{peer="n2"} 1000
sessiond_peer_bytes_sent_total{peer="n3"} 2500.5
sessiond_requests_total{status="OK",op="get"} 7 1700000000000
sessiond_requests_total{op="get",status="NOT_FOUND"} 3
sessiond_request_duration_seconds_bucket{op="get",le="+Inf"} 10
odd{path="a \"quoted\" \\ value"} NaN
neg_inf -Inf
)";

TEST(BenchMetricSamplesTest, ParsesSamplesAndSkipsComments) {
  auto samples = MetricSamples::Parse(kExposition);
  ASSERT_TRUE(samples.ok()) << samples.status().ToString();
  EXPECT_EQ(samples->size(), 8u);
  EXPECT_EQ(samples->Get("sessiond_sessions"), 1200);
  EXPECT_EQ(samples->Get(R"(sessiond_peer_bytes_sent_total{peer="n3"})"), 2500.5);
  EXPECT_TRUE(std::isnan(*samples->Get(R"(odd{path="a \"quoted\" \\ value"})")));
  EXPECT_TRUE(std::isinf(*samples->Get("neg_inf")));
}

TEST(BenchMetricSamplesTest, KeysAreCanonicalWhateverTheLabelOrder) {
  auto samples = MetricSamples::Parse(kExposition);
  ASSERT_TRUE(samples.ok());
  // Written status-first, found op-first; the timestamp is not part of the value.
  EXPECT_EQ(samples->Get(R"(sessiond_requests_total{op="get",status="OK"})"), 7);
  EXPECT_FALSE(samples->Get(R"(sessiond_requests_total{status="OK",op="get"})").has_value());
}

TEST(BenchMetricSamplesTest, SumsOverLabels) {
  auto samples = MetricSamples::Parse(kExposition);
  ASSERT_TRUE(samples.ok());
  EXPECT_EQ(samples->Sum("sessiond_peer_bytes_sent_total"), 3500.5);
  EXPECT_EQ(samples->Sum("sessiond_requests_total"), 10);
  EXPECT_EQ(samples->SumWhere("sessiond_requests_total", "status", "NOT_FOUND"), 3);
  EXPECT_FALSE(samples->Sum("sessiond_absent").has_value());
  EXPECT_FALSE(samples->SumWhere("sessiond_requests_total", "status", "CONFLICT").has_value());
}

TEST(BenchMetricSamplesTest, RejectsLinesThatAreNotSamples) {
  for (const char* bad : {"no_value\n", "name{label=\"x\" 1\n", "name{label=x} 1\n",
                          "{label=\"x\"} 1\n", "name one\n"}) {
    auto samples = MetricSamples::Parse(bad);
    EXPECT_FALSE(samples.ok()) << bad;
  }
}

TEST(BenchWorkloadOptionsTest, MixParsesThreeWeights) {
  auto mix = OpMix::Parse("80:15:5");
  ASSERT_TRUE(mix.ok());
  EXPECT_EQ(mix->read, 80);
  EXPECT_EQ(mix->write, 15);
  EXPECT_EQ(mix->create, 5);
  EXPECT_EQ(mix->ToString(), "80:15:5");
  EXPECT_TRUE(OpMix::Parse("0:0:1").ok());
  for (const char* bad :
       {"", "80:15", "80:15:5:", "80:15:5:1", "a:b:c", "-1:2:3", "0:0:0", "80::5", "80:15:5x"}) {
    EXPECT_FALSE(OpMix::Parse(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace sessiond::bench
