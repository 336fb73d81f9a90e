#include "replication/delta/stamp_table.h"

#include <gtest/gtest.h>

namespace sessiond {
namespace {

TEST(StampTableTest, StampsOrderByClockThenNodeId) {
  EXPECT_TRUE(StampAfter(Stamp{2, "a"}, Stamp{1, "z"}));
  EXPECT_TRUE(StampAfter(Stamp{2, "b"}, Stamp{2, "a"}));
  EXPECT_FALSE(StampAfter(Stamp{2, "a"}, Stamp{2, "a"}));
  EXPECT_TRUE(StampAfter(Stamp{1, "a"}, Stamp{}));
}

TEST(StampTableTest, KeepsOneStampPerFieldWithTombstones) {
  StampTable table(10);
  EXPECT_EQ(table.Get("s", StampedField::kAttribute, "k").clock, 0u);
  table.Set("s", StampedField::kAttribute, "k", 5, "n1");
  table.Set("s", StampedField::kPrincipal, "", 3, "n2");
  EXPECT_EQ(table.Get("s", StampedField::kAttribute, "k").clock, 5u);
  EXPECT_EQ(table.Get("s", StampedField::kAttribute, "k").node, "n1");
  EXPECT_EQ(table.Get("s", StampedField::kPrincipal).node, "n2");
  EXPECT_FALSE(table.IsTombstone("s", "k"));
  table.Set("s", StampedField::kAttribute, "k", 7, "n2", /*removed=*/true);
  EXPECT_TRUE(table.IsTombstone("s", "k"));
  EXPECT_EQ(table.Get("s", StampedField::kAttribute, "k").clock, 7u);
}

TEST(StampTableTest, RenameMovesStampsAndRemembersTheOldId) {
  StampTable table(10);
  table.Set("old", StampedField::kAttribute, "k", 5, "n1");
  table.Rename("old", "new");
  EXPECT_EQ(table.Get("new", StampedField::kAttribute, "k").clock, 5u);
  EXPECT_EQ(table.Get("old", StampedField::kAttribute, "k").clock, 0u);
  EXPECT_TRUE(table.WasRemoved("old"));
  EXPECT_FALSE(table.WasRemoved("new"));
  EXPECT_EQ(table.session_count(), 1u);
}

TEST(StampTableTest, RemovedIdsAreBounded) {
  StampTable table(2);
  table.Remove("s1");
  table.Remove("s2");
  table.Remove("s3");
  EXPECT_FALSE(table.WasRemoved("s1"));
  EXPECT_TRUE(table.WasRemoved("s2"));
  EXPECT_TRUE(table.WasRemoved("s3"));
  EXPECT_EQ(table.session_count(), 0u);
}

}  // namespace
}  // namespace sessiond
