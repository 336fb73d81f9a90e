// FlatKeyMap: the flat per-session table a backup-mode primary reads on every operation.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <map>
#include <random>

#include "replication/backup/flat_key_map.h"
#include "tests/unit/test_session_keys.h"

namespace sessiond {
namespace {

using testing::KeyOf;

TEST(FlatKeyMapTest, InsertFindErase) {
  FlatKeyMap<int64_t> map;
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(map.Find(KeyOf(1)), nullptr);
  map[KeyOf(1)] = 10;
  map[KeyOf(2)] = 20;
  EXPECT_EQ(map.size(), 2u);
  ASSERT_NE(map.Find(KeyOf(1)), nullptr);
  EXPECT_EQ(*map.Find(KeyOf(1)), 10);
  EXPECT_EQ(map[KeyOf(3)], 0);  // inserted as V{}
  EXPECT_EQ(map.size(), 3u);
  EXPECT_TRUE(map.Erase(KeyOf(1)));
  EXPECT_FALSE(map.Erase(KeyOf(1)));
  EXPECT_EQ(map.Find(KeyOf(1)), nullptr);
  EXPECT_EQ(*map.Find(KeyOf(2)), 20);
  EXPECT_EQ(map.size(), 2u);
}

// Random inserts and erasures through several doublings, checked against std::map: the
// backward-shift deletion must keep every remaining entry reachable from its home slot.
TEST(FlatKeyMapTest, ChurnMatchesAReferenceMap) {
  FlatKeyMap<uint64_t> map;
  std::map<uint64_t, uint64_t> reference;
  std::mt19937_64 rng(7);
  for (int step = 0; step < 200000; ++step) {
    // A small key space (so erasures hit) with keys that share low bytes (so probes collide).
    const uint64_t n = (rng() % 5000) << 4;
    if (rng() % 3 == 0) {
      EXPECT_EQ(map.Erase(KeyOf(n)), reference.erase(n) > 0);
    } else {
      map[KeyOf(n)] = step;
      reference[n] = step;
    }
  }
  EXPECT_EQ(map.size(), reference.size());
  for (uint64_t n = 0; n < (5000u << 4); n += 16) {
    const uint64_t* found = map.Find(KeyOf(n));
    auto it = reference.find(n);
    if (it == reference.end()) {
      EXPECT_EQ(found, nullptr) << n;
    } else {
      ASSERT_NE(found, nullptr) << n;
      EXPECT_EQ(*found, it->second);
    }
  }
  size_t visited = 0;
  map.ForEach([&](const SessionKey&, uint64_t&) { ++visited; });
  EXPECT_EQ(visited, reference.size());
}

}  // namespace
}  // namespace sessiond
