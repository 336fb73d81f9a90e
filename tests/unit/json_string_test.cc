#include "replication/json_string.h"

#include <gtest/gtest.h>

#include <string>

namespace sessiond {
namespace {

TEST(JsonStringTest, QuotesAndEscapesWhatJsonRequires) {
  EXPECT_EQ(JsonString(""), R"("")");
  EXPECT_EQ(JsonString("plain"), R"("plain")");
  EXPECT_EQ(JsonString("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(JsonString("line\nnext\r\ttab"), R"("line\nnext\r\ttab")");
  EXPECT_EQ(JsonString(std::string("\x01\x1f", 2)), R"("\u0001\u001f")");
  EXPECT_EQ(JsonString(std::string("nul\0end", 7)), R"("nul\u0000end")");
}

TEST(JsonStringTest, LeavesUtf8AsItIs) { EXPECT_EQ(JsonString("caf\xc3\xa9"), "\"caf\xc3\xa9\""); }

TEST(JsonStringTest, AppendsToWhatIsThere) {
  std::string out = "{\"k\":";
  AppendJsonString(out, "v");
  EXPECT_EQ(out, R"({"k":"v")");
}

}  // namespace
}  // namespace sessiond
