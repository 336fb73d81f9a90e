// Delta mode's state transfer: a node that joins asks a peer for every session, streamed in
// lz4-compressed chunks with back-pressure, buffers the live deltas meanwhile, and reports ready
// only when it holds everything; if the sender dies it asks another peer.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/delta_test_cluster.h"

namespace sessiond::testing {
namespace {

constexpr int kSessions = 20'000;

class DeltaStateTransferTest : public DeltaClusterTest {
 protected:
  DeltaStateTransferTest() {
    // Small chunks and a small window: a transfer of kSessions takes hundreds of chunks and
    // round trips, so there is time to act in the middle of one.
    delta_options_.transfer_chunk_bytes = 64 * 1024;
    delta_options_.transfer_window = 2;
  }

  DeltaOptions Joining() const {
    DeltaOptions options = delta_options_;
    options.join_cluster = true;
    return options;
  }

  bool Ready(const std::string& id) { return M(id).Ready().ready; }
};

TEST_F(DeltaStateTransferTest, NodeWithoutSeedsIsReadyAtOnce) {
  Start("a", {}, delta_options_);
  EXPECT_TRUE(Ready("a")) << M("a").Ready().detail;
}

TEST_F(DeltaStateTransferTest, JoiningNodeHoldsEverySessionBeforeItIsReady) {
  Start("a", {}, delta_options_);
  const std::vector<std::string> ids = CreateMany("a", kSessions);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kSessions));

  Start("b", {EndpointOf("a")}, Joining());
  EXPECT_FALSE(Ready("b")) << "ready before any transfer: " << M("b").Ready().detail;
  // Every time b is seen ready, it must already hold every session.
  bool ready_while_incomplete = false;
  ASSERT_TRUE(RunUntil(io_, [&] {
    if (!Ready("b")) return false;
    ready_while_incomplete = M("b").Stats().sessions() < static_cast<uint64_t>(kSessions);
    return true;
  })) << M("b").Ready().detail;
  EXPECT_FALSE(ready_while_incomplete);
  EXPECT_EQ(M("b").Stats().sessions(), static_cast<uint64_t>(kSessions));
  EXPECT_TRUE(DigestsEqual({"a", "b"}));
  EXPECT_EQ(AttributeOn("b", ids[1234], "attr3"), Attributes(1234).at("attr3"));
  EXPECT_EQ(Counter("b", "state_transfers_completed"), 1u);
  EXPECT_EQ(Counter("b", "state_transfer_sessions_received"), static_cast<uint64_t>(kSessions));
  EXPECT_GT(Counter("a", "state_transfer_chunks_sent"), 10u) << "expected many chunks";
  EXPECT_NE(M("b").Ready().detail.find("state transfer of 20000 sessions from a"),
            std::string::npos)
      << M("b").Ready().detail;

  std::string metrics;
  M("b").AppendMetrics(metrics);
  EXPECT_NE(metrics.find("sessiond_state_transfer_sessions_received_total 20000\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("sessiond_state_transfer_active 0\n"), std::string::npos) << metrics;
}

TEST_F(DeltaStateTransferTest, ProgressIsVisibleWhileTransferring) {
  Start("a", {}, delta_options_);
  CreateMany("a", kSessions);
  Start("b", {EndpointOf("a")}, Joining());
  std::string detail;
  std::string metrics;
  ASSERT_TRUE(RunUntil(io_, [&] {
    const Readiness r = M("b").Ready();
    if (r.ready) return true;
    if (r.detail.find("% from a") == std::string::npos) return false;
    detail = r.detail;
    metrics.clear();
    M("b").AppendMetrics(metrics);
    return true;
  }));
  ASSERT_FALSE(detail.empty()) << "the transfer finished before any progress was seen";
  EXPECT_NE(detail.find("state transfer"), std::string::npos) << detail;
  EXPECT_NE(metrics.find("sessiond_state_transfer_active 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("sessiond_state_transfer_sessions_expected 20000\n"), std::string::npos)
      << metrics;
}

TEST_F(DeltaStateTransferTest, LiveWritesDuringTheTransferAreNotLost) {
  constexpr int kFewer = 5'000;  // still dozens of chunks, one at a time
  Start("a", {}, delta_options_);
  const std::vector<std::string> ids = CreateMany("a", kFewer);
  delta_options_.transfer_window = 1;
  Start("b", {EndpointOf("a")}, Joining());

  // While b takes in the snapshot, a keeps changing sessions: early and late ones (sent before
  // or after their chunk), new ones, and removals.
  std::vector<std::string> created;
  std::vector<std::string> updated;
  std::vector<std::string> invalidated;
  int step = 0;
  ASSERT_TRUE(RunUntil(io_, [&] {
    if (Ready("b")) return true;
    const std::string& target = ids[(step * 7919) % kFewer];
    if (step % 3 == 0) {
      EXPECT_TRUE(SetAttribute("a", target, "live", "v" + std::to_string(step)).ok());
      updated.push_back(target);
    } else if (step % 3 == 1) {
      created.push_back(Create("a", {{"new", std::to_string(step)}}).id());
    } else if (Read("a", target).has_value()) {
      v1::InvalidateRequest invalidate;
      invalidate.set_id(target);
      EXPECT_TRUE(Run(M("a").Invalidate(invalidate)).ok());
      invalidated.push_back(target);
    }
    ++step;
    return false;
  }));
  ASSERT_GT(step, 6) << "the transfer ended before live writes could interleave";
  EXPECT_GT(Counter("b", "deltas_buffered"), 0u);
  // Every batch a sent has reached b (a has no other peer); only then is the digest worth its
  // sort of every id.
  ASSERT_TRUE(RunUntil(io_, [&] {
    return Counter("b", "delta_batches_received") >= Counter("a", "delta_batches_sent") &&
           DigestsEqual({"a", "b"});
  }));
  for (const std::string& id : created) EXPECT_TRUE(Read("b", id).has_value()) << id;
  for (const std::string& id : invalidated) EXPECT_FALSE(Read("b", id).has_value()) << id;
  for (const std::string& id : updated) {
    if (Read("a", id)) {
      EXPECT_EQ(AttributeOn("b", id, "live"), AttributeOn("a", id, "live"));
    }
  }
}

TEST_F(DeltaStateTransferTest, SenderKilledMidTransferReceiverCompletesFromAnother) {
  Start("a", {}, delta_options_);
  CreateMany("a", kSessions);
  Start("c", {EndpointOf("a")}, Joining());
  ASSERT_TRUE(RunUntil(io_, [&] { return Ready("c"); }));
  ASSERT_TRUE(DigestsEqual({"a", "c"}));
  const uint64_t chunks_before_a = Counter("a", "state_transfer_chunks_sent");

  delta_options_.transfer_window = 1;
  Start("b", {EndpointOf("a"), EndpointOf("c")}, Joining());
  // Kill whichever node is sending, a few chunks in.
  std::string sender;
  ASSERT_TRUE(RunUntil(io_, [&] {
    if (Counter("a", "state_transfer_chunks_sent") >= chunks_before_a + 3) sender = "a";
    if (Counter("c", "state_transfer_chunks_sent") >= 3) sender = "c";
    return !sender.empty();
  }));
  ASSERT_FALSE(Ready("b"));
  const std::string survivor = sender == "a" ? "c" : "a";
  Crash(sender);

  ASSERT_TRUE(RunUntil(io_, [&] { return Ready("b"); })) << M("b").Ready().detail;
  EXPECT_EQ(M("b").Stats().sessions(), static_cast<uint64_t>(kSessions));
  EXPECT_TRUE(DigestsEqual({survivor, "b"}));
  EXPECT_GE(Counter("b", "state_transfers_restarted"), 1u);
  EXPECT_NE(M("b").Ready().detail.find("from " + survivor), std::string::npos)
      << M("b").Ready().detail;
}

TEST_F(DeltaStateTransferTest, NodesJoiningEachOtherWithNothingToSendBecomeReady) {
  delta_options_.join_window = 200ms;
  Relay& relay = AddRelay();  // b's address, before b exists
  Start("a", {relay.endpoint()}, Joining());
  Start("b", {EndpointOf("a")}, Joining(), &relay);
  // Each refuses the other (it is joining too) until the window passes: a new cluster.
  ASSERT_TRUE(RunUntil(io_, [&] { return Ready("a") && Ready("b"); }))
      << M("a").Ready().detail << " / " << M("b").Ready().detail;
  const v1::Session s = Create("a", {{"k", "1"}});
  ASSERT_TRUE(RunUntil(io_, [&] { return AttributeOn("b", s.id(), "k") == "1"; }));
}

}  // namespace
}  // namespace sessiond::testing
