#include "replication/attribute_block.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace sessiond {
namespace {

std::map<std::string, std::string> ToMap(const AttributeBlock& block) {
  std::map<std::string, std::string> m;
  for (const AttributeBlock::Attribute& a : block) m.emplace(a.name, a.value);
  return m;
}

TEST(AttributeBlockTest, EmptyBlockHoldsNothingAndAllocatesNothing) {
  AttributeBlock block;
  EXPECT_TRUE(block.empty());
  EXPECT_EQ(block.count(), 0u);
  EXPECT_EQ(block.allocated_bytes(), 0u);
  EXPECT_FALSE(block.Find("user").has_value());
  EXPECT_TRUE(block.begin() == block.end());

  AttributeBlock built = AttributeBlock::Builder().Build();
  EXPECT_TRUE(built.empty());
}

TEST(AttributeBlockTest, FindsWhatWasAddedInOrder) {
  AttributeBlock::Builder builder;
  builder.Add("user", "alice");
  builder.Add("cart", std::string("\0binary\xff", 8));
  builder.Add("empty", "");
  EXPECT_EQ(builder.count(), 3u);
  const AttributeBlock block = std::move(builder).Build();

  EXPECT_EQ(block.count(), 3u);
  EXPECT_EQ(block.Find("user"), "alice");
  EXPECT_EQ(block.Find("cart"), std::string_view("\0binary\xff", 8));
  EXPECT_EQ(block.Find("empty"), "");
  EXPECT_FALSE(block.Find("use").has_value());
  EXPECT_FALSE(block.Find("users").has_value());

  std::vector<std::string> names;
  for (const auto& a : block) names.emplace_back(a.name);
  EXPECT_EQ(names, (std::vector<std::string>{"user", "cart", "empty"}));
}

TEST(AttributeBlockTest, PacksSmallAttributesTightly) {
  AttributeBlock::Builder builder;
  builder.Add("user", std::string(50, 'u'));
  builder.Add("cart", std::string(50, 'c'));
  const AttributeBlock block = std::move(builder).Build();
  // 1-byte header + per attribute 1-byte lengths, 4-byte name, 50-byte value.
  EXPECT_EQ(block.allocated_bytes(), 1u + 2 * (1 + 4 + 1 + 50));
}

TEST(AttributeBlockTest, HandlesValuesNeedingMultiByteLengths) {
  const std::string big(300000, 'x');
  AttributeBlock::Builder builder;
  builder.Add(std::string(200, 'n'), big);
  builder.Add("after", "tail");
  const AttributeBlock block = std::move(builder).Build();
  EXPECT_EQ(block.Find(std::string(200, 'n')), big);
  EXPECT_EQ(block.Find("after"), "tail");
  EXPECT_EQ(ToMap(block).size(), 2u);
}

TEST(AttributeBlockTest, MovesWithoutCopying) {
  AttributeBlock::Builder builder;
  builder.Add("a", "1");
  AttributeBlock first = std::move(builder).Build();
  const void* data = first.Find("a")->data();
  AttributeBlock second = std::move(first);
  EXPECT_EQ(second.Find("a")->data(), data);
  EXPECT_TRUE(first.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
}

}  // namespace
}  // namespace sessiond
