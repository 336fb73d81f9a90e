// Rendezvous placement of backups: stable, K distinct non-primary nodes, minimal movement.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "replication/backup/placement.h"
#include "tests/unit/test_session_keys.h"

namespace sessiond {
namespace {

SessionKey KeyOf(uint64_t n) { return testing::KeyOf(n, 0x5A); }

std::vector<std::string> Nodes(int n) {
  std::vector<std::string> nodes;
  for (int i = 1; i <= n; ++i) nodes.push_back("n" + std::to_string(i));
  return nodes;
}

TEST(PlacementTest, RendezvousIsStableAndOrderIndependent) {
  const std::vector<std::string> live = Nodes(5);
  std::vector<std::string> reversed(live.rbegin(), live.rend());
  for (uint64_t i = 0; i < 200; ++i) {
    const SessionKey key = KeyOf(i);
    EXPECT_EQ(PickByRendezvous(key, live, {"n1"}, 2), PickByRendezvous(key, reversed, {"n1"}, 2));
    EXPECT_EQ(RendezvousScore(key, "n3"), RendezvousScore(key, "n3"));
  }
}

TEST(PlacementTest, PicksKDistinctNodesOtherThanThePrimary) {
  const std::vector<std::string> live = Nodes(6);
  for (uint64_t i = 0; i < 500; ++i) {
    for (size_t k = 0; k <= 5; ++k) {
      const std::vector<std::string> backups = RefillBackups(KeyOf(i), "n2", {}, live, k);
      ASSERT_EQ(backups.size(), k);
      EXPECT_EQ(std::set<std::string>(backups.begin(), backups.end()).size(), k);
      EXPECT_EQ(std::count(backups.begin(), backups.end(), "n2"), 0);
    }
  }
  // Never more than there are other nodes.
  EXPECT_EQ(RefillBackups(KeyOf(1), "n1", {}, Nodes(3), 5).size(), 2u);
}

TEST(PlacementTest, SpreadsBackupsEvenly) {
  const std::vector<std::string> live = Nodes(4);
  std::map<std::string, int> count;
  for (uint64_t i = 0; i < 3000; ++i) ++count[RefillBackups(KeyOf(i), "n1", {}, live, 1)[0]];
  for (const char* node : {"n2", "n3", "n4"}) {
    EXPECT_GT(count[node], 800) << node;
    EXPECT_LT(count[node], 1200) << node;
  }
}

TEST(PlacementTest, RefillKeepsExistingBackupsAndDropsDeadOnes) {
  const SessionKey key = KeyOf(7);
  EXPECT_EQ(RefillBackups(key, "n1", {"n4", "n3"}, Nodes(5), 2),
            (std::vector<std::string>{"n4", "n3"}));
  // n4 died: kept n3 first, one new pick that is neither n1 nor n3.
  const std::vector<std::string> live{"n1", "n2", "n3", "n5"};
  const std::vector<std::string> refilled = RefillBackups(key, "n1", {"n4", "n3"}, live, 2);
  ASSERT_EQ(refilled.size(), 2u);
  EXPECT_EQ(refilled[0], "n3");
  EXPECT_TRUE(refilled[1] == "n2" || refilled[1] == "n5");
}

TEST(PlacementTest, MinimalMovementWhenANodeJoinsOrLeaves) {
  const std::vector<std::string> before = Nodes(5);
  std::vector<std::string> after = before;
  after.push_back("n6");
  const int sessions = 4000;
  int moved_join = 0;
  int moved_leave = 0;
  for (uint64_t i = 0; i < sessions; ++i) {
    const SessionKey key = KeyOf(i);
    const auto a = PickByRendezvous(key, before, {}, 2);
    const auto b = PickByRendezvous(key, after, {}, 2);
    // A fresh pick changes only where the newcomer enters the top 2.
    for (const std::string& node : a) {
      if (std::find(b.begin(), b.end(), node) == b.end()) ++moved_join;
    }
    if (std::find(b.begin(), b.end(), "n6") == b.end()) {
      EXPECT_EQ(a, b);
    }
    // Removing n3 changes only the picks that included n3.
    const std::vector<std::string> without{"n1", "n2", "n4", "n5"};
    const auto c = PickByRendezvous(key, without, {}, 2);
    if (std::find(a.begin(), a.end(), "n3") == a.end()) {
      EXPECT_EQ(a, c);
    } else {
      ++moved_leave;
    }
  }
  // About K/N of the copies move: 2 of 6 slots per session, far from a full reshuffle.
  EXPECT_LT(moved_join, sessions * 2 / 6 + sessions / 10);
  EXPECT_LT(moved_leave, sessions * 2 / 5 + sessions / 10);
}

}  // namespace
}  // namespace sessiond
