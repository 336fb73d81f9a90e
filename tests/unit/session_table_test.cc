#include "replication/session_table.h"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <set>
#include <vector>

namespace sessiond {
namespace {

// Keys that differ only in a counter, the worst case for a hash that trusted raw bytes.
SessionKey Key(uint64_t n) {
  std::array<uint8_t, SessionKey::kBytes> bytes{};
  for (int i = 0; i < 8; ++i) bytes[15 - i] = static_cast<uint8_t>(n >> (8 * i));
  return SessionKey(bytes);
}

std::unique_ptr<StoredSession> Session(uint64_t n) {
  return std::make_unique<StoredSession>(Key(n), static_cast<int64_t>(n));
}

TEST(SessionTableTest, FindsInsertedSessionsAndNotOthers) {
  SessionTable table;
  EXPECT_EQ(table.Find(Key(1)), nullptr);
  StoredSession* one = table.Insert(Session(1));
  EXPECT_EQ(table.Find(Key(1)), one);
  EXPECT_EQ(table.Find(Key(2)), nullptr);
  EXPECT_EQ(table.size(), 1u);
}

TEST(SessionTableTest, GrowsKeepingEverySessionAtTheSameAddress) {
  SessionTable table;
  std::vector<StoredSession*> added;
  for (uint64_t n = 0; n < 100000; ++n) added.push_back(table.Insert(Session(n)));
  EXPECT_EQ(table.size(), 100000u);
  // Load stays at or under 7/8.
  EXPECT_LE(table.size() * 8, table.capacity() * 7);
  for (uint64_t n = 0; n < 100000; ++n) ASSERT_EQ(table.Find(Key(n)), added[n]) << n;
  EXPECT_EQ(table.Find(Key(100000)), nullptr);
}

TEST(SessionTableTest, RemoveGivesTheSessionBackAndKeepsOthersFindable) {
  SessionTable table;
  for (uint64_t n = 0; n < 1000; ++n) table.Insert(Session(n));
  for (uint64_t n = 0; n < 1000; n += 2) {
    std::unique_ptr<StoredSession> s = table.Remove(Key(n));
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->key(), Key(n));
  }
  EXPECT_EQ(table.Remove(Key(0)), nullptr);
  EXPECT_EQ(table.size(), 500u);
  for (uint64_t n = 0; n < 1000; ++n) EXPECT_EQ(table.Find(Key(n)) != nullptr, n % 2 == 1) << n;
}

TEST(SessionTableTest, ChurnDoesNotGrowTheTable) {
  // Insert/remove cycles leave tombstones; the table must reuse or clear them, not grow.
  SessionTable table;
  for (uint64_t n = 0; n < 1000; ++n) table.Insert(Session(n));
  const size_t capacity = table.capacity();
  for (uint64_t n = 1000; n < 200000; ++n) {
    table.Insert(Session(n));
    ASSERT_NE(table.Remove(Key(n - 1000)), nullptr);
  }
  EXPECT_EQ(table.size(), 1000u);
  EXPECT_LE(table.capacity(), capacity * 2);
  for (uint64_t n = 199000; n < 200000; ++n) ASSERT_NE(table.Find(Key(n)), nullptr);
}

TEST(SessionTableTest, ShrinksAfterMostSessionsGo) {
  SessionTable table;
  for (uint64_t n = 0; n < 100000; ++n) table.Insert(Session(n));
  const size_t full = table.capacity();
  for (uint64_t n = 0; n < 99000; ++n) table.Remove(Key(n));
  EXPECT_LT(table.capacity(), full / 4);
  for (uint64_t n = 99000; n < 100000; ++n) ASSERT_NE(table.Find(Key(n)), nullptr);
}

TEST(SessionTableTest, ForEachVisitsEverySessionOnce) {
  SessionTable table;
  for (uint64_t n = 0; n < 5000; ++n) table.Insert(Session(n));
  for (uint64_t n = 0; n < 5000; n += 3) table.Remove(Key(n));
  std::set<int64_t> seen;
  table.ForEach([&](const StoredSession& s) { EXPECT_TRUE(seen.insert(s.created_ms()).second); });
  EXPECT_EQ(seen.size(), table.size());
}

}  // namespace
}  // namespace sessiond
