#include "replication/cluster/failure_detector.h"

#include <gtest/gtest.h>

namespace sessiond {
namespace {

using Verdict = FailureDetector::Verdict;

FailureDetectorOptions Options() {
  FailureDetectorOptions options;
  options.suspect_after_ms = 1000;
  options.dead_after_ms = 1800;
  return options;
}

TEST(FailureDetectorTest, SilentPeerTurnsSuspectThenDead) {
  FailureDetector detector(Options());
  detector.Heard("b", 10'000);
  EXPECT_EQ(detector.Check("b", 10'000), Verdict::kAlive);
  EXPECT_EQ(detector.Check("b", 10'999), Verdict::kAlive);
  EXPECT_EQ(detector.Check("b", 11'000), Verdict::kSuspect);
  EXPECT_EQ(detector.Check("b", 11'799), Verdict::kSuspect);
  EXPECT_EQ(detector.Check("b", 11'800), Verdict::kDead);
}

TEST(FailureDetectorTest, HearingAgainResetsTheClock) {
  FailureDetector detector(Options());
  detector.Heard("b", 0);
  EXPECT_EQ(detector.Check("b", 1500), Verdict::kSuspect);
  detector.Heard("b", 1500);
  EXPECT_EQ(detector.Check("b", 2400), Verdict::kAlive);
  EXPECT_EQ(detector.last_heard_ms("b"), 1500);
}

TEST(FailureDetectorTest, AnOlderTimestampNeverMakesAPeerLookOlder) {
  FailureDetector detector(Options());
  detector.Heard("b", 5000);
  detector.Heard("b", 4000);  // the clock stepped back
  EXPECT_EQ(detector.last_heard_ms("b"), 5000);
}

TEST(FailureDetectorTest, UnknownAndForgottenPeersAreDead) {
  FailureDetector detector(Options());
  EXPECT_EQ(detector.Check("nobody", 0), Verdict::kDead);
  EXPECT_FALSE(detector.last_heard_ms("nobody").has_value());
  detector.Heard("b", 0);
  detector.Forget("b");
  EXPECT_EQ(detector.Check("b", 0), Verdict::kDead);
}

TEST(FailureDetectorTest, PeersAreJudgedIndependently) {
  FailureDetector detector(Options());
  detector.Heard("b", 0);
  detector.Heard("c", 900);
  EXPECT_EQ(detector.Check("b", 1800), Verdict::kDead);
  EXPECT_EQ(detector.Check("c", 1800), Verdict::kAlive);
}

TEST(FailureDetectorTest, OptionsValidate) {
  EXPECT_TRUE(Options().Validate().ok());
  FailureDetectorOptions bad = Options();
  bad.dead_after_ms = 500;
  EXPECT_EQ(bad.Validate().code(), v1::INVALID_ARGUMENT);
  bad = Options();
  bad.suspect_after_ms = 0;
  EXPECT_EQ(bad.Validate().code(), v1::INVALID_ARGUMENT);
}

TEST(FailureDetectorTest, DefaultsDeclareASilentPeerDeadWithinTwoSeconds) {
  // With the default tick (the 200 ms heartbeat interval), a verdict lags by at most one tick.
  EXPECT_LE(FailureDetectorOptions{}.dead_after_ms + 200, 2000);
}

}  // namespace
}  // namespace sessiond
