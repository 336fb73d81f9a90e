#include "sessiond/metrics.h"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "sessiond/latency_histogram.h"

namespace sessiond {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool HasLine(const std::string& text, const std::string& line) {
  for (const std::string& candidate : Lines(text)) {
    if (candidate == line) return true;
  }
  return false;
}

v1::NodeStats SomeStats() {
  v1::NodeStats stats;
  stats.set_node_id("n1");
  stats.set_mode("standalone");
  stats.set_sessions(42);
  (*stats.mutable_counters())["sessions_created"] = 50;
  (*stats.mutable_counters())["odd \"name\""] = 1;
  return stats;
}

TEST(LatencyHistogramTest, BucketsIncludeTheirUpperBound) {
  LatencyHistogram histogram;
  histogram.Record(microseconds(25));              // exactly the first bound
  histogram.Record(microseconds(26));              // just over it
  histogram.Record(seconds(20));                   // beyond the last bound
  histogram.Record(std::chrono::nanoseconds(-5));  // a clock step back counts as zero
  EXPECT_EQ(histogram.count(), 4u);
  EXPECT_EQ(histogram.bucket(0), 2u);
  EXPECT_EQ(histogram.bucket(1), 1u);
  EXPECT_EQ(histogram.bucket(LatencyHistogram::kBoundsNs.size()), 1u);
}

TEST(LatencyHistogramTest, PrometheusBucketsAreCumulativeAndEndWithInf) {
  LatencyHistogram histogram;
  histogram.Record(microseconds(10));
  histogram.Record(milliseconds(3));
  histogram.Record(milliseconds(3));
  std::string text;
  histogram.AppendPrometheus(text, "x_seconds", "op=\"get\"");

  EXPECT_TRUE(HasLine(text, "x_seconds_bucket{op=\"get\",le=\"2.5e-05\"} 1")) << text;
  EXPECT_TRUE(HasLine(text, "x_seconds_bucket{op=\"get\",le=\"0.0025\"} 1")) << text;
  EXPECT_TRUE(HasLine(text, "x_seconds_bucket{op=\"get\",le=\"0.005\"} 3")) << text;
  EXPECT_TRUE(HasLine(text, "x_seconds_bucket{op=\"get\",le=\"+Inf\"} 3")) << text;
  EXPECT_TRUE(HasLine(text, "x_seconds_count{op=\"get\"} 3")) << text;
  EXPECT_TRUE(HasLine(text, "x_seconds_sum{op=\"get\"} 0.00601")) << text;

  // Non-decreasing from the first bucket to +Inf.
  uint64_t previous = 0;
  for (const std::string& line : Lines(text)) {
    if (line.find("_bucket") == std::string::npos) continue;
    const uint64_t value = std::stoull(line.substr(line.rfind(' ') + 1));
    EXPECT_GE(value, previous) << line;
    previous = value;
  }
}

TEST(MetricsTest, EverySampleLineHasTheExpositionShape) {
  Metrics metrics;
  metrics.RecordRequest(Metrics::Op::kGet, v1::OK, microseconds(80));
  metrics.ConnectionOpened();
  const std::string text = metrics.RenderPrometheus(SomeStats(), true);

  // name{label="value",...} number, or a # HELP / # TYPE comment.
  const std::regex sample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? [-+0-9.eE]+(Inf)?$)");
  const std::regex comment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  size_t samples = 0;
  for (const std::string& line : Lines(text)) {
    if (line.rfind("#", 0) == 0) {
      EXPECT_TRUE(std::regex_match(line, comment)) << line;
    } else {
      EXPECT_TRUE(std::regex_match(line, sample)) << line;
      ++samples;
    }
  }
  EXPECT_GT(samples, 50u);
  EXPECT_EQ(text.back(), '\n');
}

TEST(MetricsTest, CountsRequestsByOperationAndStatus) {
  Metrics metrics;
  metrics.RecordRequest(Metrics::Op::kGet, v1::OK, microseconds(80));
  metrics.RecordRequest(Metrics::Op::kGet, v1::OK, microseconds(90));
  metrics.RecordRequest(Metrics::Op::kGet, v1::NOT_FOUND, microseconds(70));
  metrics.RecordRequest(Metrics::Op::kRotateId, v1::OK, milliseconds(2));
  const std::string text = metrics.RenderPrometheus(SomeStats(), true);

  EXPECT_TRUE(HasLine(text, "sessiond_requests_total{op=\"get\",status=\"OK\"} 2")) << text;
  EXPECT_TRUE(HasLine(text, "sessiond_requests_total{op=\"get\",status=\"NOT_FOUND\"} 1"));
  EXPECT_TRUE(HasLine(text, "sessiond_requests_total{op=\"rotate_id\",status=\"OK\"} 1"));
  // Operations that never failed show only their OK line.
  EXPECT_TRUE(HasLine(text, "sessiond_requests_total{op=\"ping\",status=\"OK\"} 0"));
  EXPECT_EQ(text.find("op=\"ping\",status=\"NOT_FOUND\""), std::string::npos);
  EXPECT_TRUE(HasLine(text, "sessiond_request_duration_seconds_count{op=\"get\"} 3"));
  EXPECT_TRUE(HasLine(text, "# TYPE sessiond_request_duration_seconds histogram"));
  EXPECT_TRUE(HasLine(text, "# TYPE sessiond_requests_total counter"));
}

TEST(MetricsTest, ShowsConnectionsTrafficAndTheManagersNumbers) {
  Metrics metrics;
  metrics.ConnectionOpened();
  metrics.ConnectionOpened();
  metrics.ConnectionClosed();
  metrics.ConnectionRefused();
  metrics.BytesReceived(100);
  metrics.BytesSent(250);
  metrics.FramesReceived(3);
  metrics.FramesSent(4);
  metrics.BadFrame();
  const std::string text = metrics.RenderPrometheus(SomeStats(), false);

  EXPECT_TRUE(HasLine(text, "sessiond_client_connections 1")) << text;
  EXPECT_TRUE(HasLine(text, "sessiond_client_connections_total 2"));
  EXPECT_TRUE(HasLine(text, "sessiond_client_connections_refused_total 1"));
  EXPECT_TRUE(HasLine(text, "sessiond_client_received_bytes_total 100"));
  EXPECT_TRUE(HasLine(text, "sessiond_client_sent_bytes_total 250"));
  EXPECT_TRUE(HasLine(text, "sessiond_client_received_frames_total 3"));
  EXPECT_TRUE(HasLine(text, "sessiond_client_sent_frames_total 4"));
  EXPECT_TRUE(HasLine(text, "sessiond_client_bad_frames_total 1"));
  EXPECT_TRUE(HasLine(text, "sessiond_sessions 42"));
  EXPECT_TRUE(HasLine(text, "sessiond_ready 0"));
  EXPECT_TRUE(HasLine(text, "sessiond_info{node_id=\"n1\",mode=\"standalone\"} 1"));
  EXPECT_TRUE(HasLine(text, "sessiond_manager_counter{name=\"sessions_created\"} 50"));
  // Label values are escaped as the format requires.
  EXPECT_TRUE(HasLine(text, "sessiond_manager_counter{name=\"odd \\\"name\\\"\"} 1")) << text;
}

}  // namespace
}  // namespace sessiond
