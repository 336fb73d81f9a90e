// JsonValue (the bench's parser) and JsonWriter (its emitter), against each other and against
// hand-written documents, valid and not.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "tools/bench/json_value.h"
#include "tools/bench/json_writer.h"

namespace sessiond::bench {
namespace {

TEST(BenchJsonTest, ParsesEveryKindOfValue) {
  auto doc = JsonValue::Parse(
      R"( {"pid": 1234, "ratio": -1.5e2, "name": "n\u00e9\"1\"\n", "ok": true, "none": null,
           "list": [1, [], {}], "nested": {"deep": {"x": false}}} )");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->Find("pid")->as_int64(), 1234);
  EXPECT_DOUBLE_EQ(doc->Find("ratio")->as_double(), -150.0);
  EXPECT_EQ(doc->Find("ratio")->as_int64(), -150);  // an integral double still is one
  EXPECT_EQ(doc->Find("name")->as_string(), "n\xc3\xa9\"1\"\n");
  EXPECT_TRUE(doc->Find("ok")->as_bool());
  EXPECT_TRUE(doc->Find("none")->is_null());
  EXPECT_EQ(doc->Find("list")->as_array().size(), 3u);
  EXPECT_TRUE(doc->Find("list")->as_array()[1].is_array());
  EXPECT_FALSE(doc->Find("nested")->Find("deep")->Find("x")->as_bool());
  EXPECT_EQ(doc->Find("missing"), nullptr);
}

TEST(BenchJsonTest, DecodesSurrogatePairs) {
  auto doc = JsonValue::Parse(R"("\ud83d\ude00")");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->as_string(), "\xf0\x9f\x98\x80");
}

TEST(BenchJsonTest, RejectsWhatIsNotJson) {
  for (const char* bad : {"",
                          "{",
                          "[1,]",
                          "{\"a\":1,}",
                          "{a:1}",
                          "'x'",
                          "01",
                          "1.",
                          ".5",
                          "-",
                          "1e",
                          "tru",
                          "\"unterminated",
                          "\"bad \\x escape\"",
                          "\"raw \n newline\"",
                          "[1] [2]",
                          "nul",
                          "\"\\udc00\"",
                          "{\"a\" 1}",
                          "NaN"}) {
    auto doc = JsonValue::Parse(bad);
    EXPECT_FALSE(doc.ok()) << "accepted: " << bad;
    if (!doc.ok()) {
      EXPECT_EQ(doc.status().code(), v1::INVALID_ARGUMENT);
    }
  }
}

TEST(BenchJsonTest, RejectsExcessiveNesting) {
  std::string deep(300, '[');
  deep += std::string(300, ']');
  EXPECT_FALSE(JsonValue::Parse(deep).ok());
  std::string fine(100, '[');
  fine += std::string(100, ']');
  EXPECT_TRUE(JsonValue::Parse(fine).ok());
}

TEST(BenchJsonTest, WriterOutputParsesBackToTheSameValues) {
  JsonWriter w;
  w.BeginObject();
  w.Key("text").String("quote \" backslash \\ newline \n tab \t bell \x07");
  w.Key("int").Integer(-42);
  w.Key("big").Unsigned(18'000'000'000'000'000'000u);
  w.Key("pi").Number(3.141592653589793);
  w.Key("nan").Number(std::nan(""));
  w.Key("inf").Number(std::numeric_limits<double>::infinity());
  w.Key("yes").Bool(true);
  w.Key("nothing").Null();
  w.Key("empty_list").BeginArray().EndArray();
  w.Key("empty_object").BeginObject().EndObject();
  w.Key("list").BeginArray();
  w.Integer(1).String("two").BeginObject().Key("three").Integer(3).EndObject();
  w.EndArray();
  w.EndObject();
  const std::string text = w.Take();

  auto doc = JsonValue::Parse(text);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString() << "\n" << text;
  EXPECT_EQ(doc->Find("text")->as_string(), "quote \" backslash \\ newline \n tab \t bell \x07");
  EXPECT_EQ(doc->Find("int")->as_int64(), -42);
  EXPECT_DOUBLE_EQ(doc->Find("big")->as_double(), 1.8e19);
  EXPECT_DOUBLE_EQ(doc->Find("pi")->as_double(), 3.141592653589793);
  EXPECT_TRUE(doc->Find("nan")->is_null());
  EXPECT_TRUE(doc->Find("inf")->is_null());
  EXPECT_TRUE(doc->Find("yes")->as_bool());
  EXPECT_TRUE(doc->Find("nothing")->is_null());
  EXPECT_TRUE(doc->Find("empty_list")->as_array().empty());
  EXPECT_TRUE(doc->Find("empty_object")->as_object().empty());
  const auto& list = doc->Find("list")->as_array();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[1].as_string(), "two");
  EXPECT_EQ(list[2].Find("three")->as_int64(), 3);
}

}  // namespace
}  // namespace sessiond::bench
