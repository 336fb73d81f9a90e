// WorkloadDriver against a real standalone sessiond (started by ClusterLauncher): every operation
// of the mix is measured, writes are verified, the lag probe works, and the open loop sends
// exactly the requests its rate asks for.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tools/bench/cluster_launcher.h"
#include "tools/bench/workload_driver.h"

namespace sessiond::bench {
namespace {

using namespace std::chrono_literals;

std::string SessiondBinary() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  const auto sibling = self.parent_path() / "sessiond";
  return std::filesystem::exists(sibling, ec) ? sibling.string() : "";
}

class BenchWorkloadDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string binary = SessiondBinary();
    if (binary.empty()) GTEST_SKIP() << "sessiond is not built next to the test binary";
    std::string pattern =
        (std::filesystem::temp_directory_path() / "bench_driver_test_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    ClusterOptions options;
    options.sessiond_binary = binary;
    options.mode = "standalone";
    options.nodes = 1;
    options.work_dir = dir_;
    launcher_ = std::make_unique<ClusterLauncher>(options);
    ASSERT_TRUE(launcher_->Start().ok());
  }

  void TearDown() override {
    launcher_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // The one node, listed twice: two "nodes" that share every session, as a replicated cluster's
  // nodes do, so routing and the lag probe have two ends.
  std::vector<Endpoint> TwoViewsOfOneNode() const {
    return {launcher_->nodes()[0].client, launcher_->nodes()[0].client};
  }

  static WorkloadOptions Small() {
    WorkloadOptions options;
    options.sessions = 200;
    options.attributes = 3;
    options.value_bytes = 64;
    options.mix = OpMix{50, 40, 10};
    options.sticky = 0.5;
    options.connections = 2;
    options.threads = 2;
    options.warmup = 200ms;
    options.duration = 1000ms;
    return options;
  }

  std::string dir_;
  std::unique_ptr<ClusterLauncher> launcher_;
};

TEST_F(BenchWorkloadDriverTest, ClosedLoopMeasuresTheMixAndEveryWriteSurvives) {
  WorkloadOptions options = Small();
  options.record_writes = true;
  options.lag_probes_per_s = 50;
  WorkloadDriver driver(TwoViewsOfOneNode(), options);
  RunProgress progress;
  ASSERT_TRUE(driver.Populate(progress).ok());
  EXPECT_EQ(driver.session_count(), 200u);

  auto result = driver.Run(progress);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_FALSE(result->interrupted);
  EXPECT_EQ(result->measured, std::chrono::nanoseconds(1000ms));
  EXPECT_EQ(result->all.failed(), 0u);
  for (int op = 0; op < kOpCount; ++op) {
    EXPECT_GT(result->by_op[op].ok, 0u) << OpName(static_cast<Op>(op));
    EXPECT_EQ(result->by_op[op].latency.TotalCount(), static_cast<int64_t>(result->by_op[op].ok));
  }
  EXPECT_EQ(result->all.ok, result->by_op[0].ok + result->by_op[1].ok + result->by_op[2].ok);
  EXPECT_GT(result->throughput(), 0);
  EXPECT_FALSE(result->timeline.empty());
  EXPECT_LT(result->timeline.front().second, 0);  // the warm-up is in the timeline too
  // One store behind both ends: every probe is visible at once.
  EXPECT_GT(result->lag_probes, 0u);
  EXPECT_EQ(result->lag_unseen, 0u);

  EXPECT_GT(result->ledger.write_count(), 0u);
  const LostWriteLedger::Verdict verdict = driver.VerifyWrites(result->ledger, {true, true});
  EXPECT_GT(verdict.acknowledged_writes, 600u);  // at least the initial attributes
  EXPECT_EQ(verdict.writes_lost, 0u);
  EXPECT_EQ(verdict.sessions_lost, 0u);
  EXPECT_EQ(verdict.unexpected_values, 0u);
  EXPECT_EQ(verdict.sessions_checked, driver.session_count());
}

TEST_F(BenchWorkloadDriverTest, OpenLoopSendsExactlyTheRequestsItsRateAsksFor) {
  WorkloadOptions options = Small();
  options.rate = 400;  // 2 threads x 200/s, for 1 s measured
  WorkloadDriver driver(TwoViewsOfOneNode(), options);
  RunProgress progress;
  ASSERT_TRUE(driver.Populate(progress).ok());
  auto result = driver.Run(progress);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  // The intended send times are fixed by the rate, whatever the machine's speed: each thread has
  // 200 of them in the measured second (give or take the one on the boundary).
  const uint64_t sent = result->all.ok + result->all.failed();
  EXPECT_GE(sent, 398u);
  EXPECT_LE(sent, 402u);
}

TEST_F(BenchWorkloadDriverTest, StopEndsTheRunEarlyAndSaysSo) {
  WorkloadOptions options = Small();
  options.duration = 60'000ms;
  WorkloadDriver driver(TwoViewsOfOneNode(), options);
  RunProgress progress;
  ASSERT_TRUE(driver.Populate(progress).ok());
  progress.stop = true;  // as Ctrl-C would, before the run even starts
  auto result = driver.Run(progress);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->interrupted);
  EXPECT_LT(result->measured, std::chrono::nanoseconds(60'000ms));
}

}  // namespace
}  // namespace sessiond::bench
