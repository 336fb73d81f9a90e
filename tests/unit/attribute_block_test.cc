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
  // Prefetching reads only the block's own bytes, whatever its size (and none when empty).
  block.Prefetch();
  block.PrefetchRest();
  AttributeBlock().PrefetchRest();
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

namespace sessiond {
namespace {

TEST(AttributeBlockTest, OfHoldsTheSameBytesAsTheBuilder) {
  const std::string big(300, 'v');  // a two-byte length
  const std::vector<AttributeBlock::Attribute> attributes = {
      {"a", "1"}, {"empty", ""}, {"big", big}, {std::string_view("n\0ul", 4), "x"}};
  AttributeBlock::Builder builder;
  for (const AttributeBlock::Attribute& a : attributes) builder.Add(a.name, a.value);
  const AttributeBlock built = std::move(builder).Build();
  const AttributeBlock of = AttributeBlock::Of(attributes);
  EXPECT_EQ(of.allocated_bytes(), built.allocated_bytes());
  std::vector<std::pair<std::string_view, std::string_view>> want, got;
  for (const auto& a : built) want.emplace_back(a.name, a.value);
  for (const auto& a : of) got.emplace_back(a.name, a.value);
  EXPECT_EQ(got, want);
  EXPECT_EQ(of.Find("big"), big);

  const AttributeBlock none = AttributeBlock::Of({});
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.allocated_bytes(), 0u);
}

}  // namespace
}  // namespace sessiond
