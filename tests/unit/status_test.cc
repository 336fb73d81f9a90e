#include "sessiond/status.h"

#include <gtest/gtest.h>

#include <string>

namespace sessiond {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.code(), v1::OK);
  EXPECT_EQ(status.ToString(), "OK");
  EXPECT_EQ(Status::Ok(), status);
}

TEST(StatusTest, HelpersCarryTheirCodeAndMessage) {
  EXPECT_EQ(NotFound("a").code(), v1::NOT_FOUND);
  EXPECT_EQ(Conflict("a").code(), v1::CONFLICT);
  EXPECT_EQ(InvalidArgument("a").code(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(TooLarge("a").code(), v1::TOO_LARGE);
  EXPECT_EQ(ResourceExhausted("a").code(), v1::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Unavailable("a").code(), v1::UNAVAILABLE);
  EXPECT_EQ(Unauthenticated("a").code(), v1::UNAUTHENTICATED);
  EXPECT_EQ(Internal("a").code(), v1::INTERNAL);
  EXPECT_EQ(NotFound("session x not found").message(), "session x not found");
  EXPECT_FALSE(Internal("x").ok());
}

TEST(StatusTest, ToStringNamesTheCode) {
  EXPECT_EQ(NotFound("session abc not found; create a new one").ToString(),
            "NOT_FOUND: session abc not found; create a new one");
  EXPECT_EQ(Status(v1::UNAVAILABLE, "").ToString(), "UNAVAILABLE");
}

TEST(StatusTest, EveryCodeHasItsProtocolName) {
  for (int code = v1::StatusCode_MIN; code <= v1::StatusCode_MAX; ++code) {
    const auto typed = static_cast<StatusCode>(code);
    EXPECT_EQ(StatusCodeName(typed), v1::StatusCode_Name(typed)) << code;
  }
  EXPECT_EQ(StatusCodeName(static_cast<StatusCode>(99)), "UNKNOWN_STATUS");
}

TEST(StatusTest, EqualityComparesCodeAndMessage) {
  EXPECT_EQ(NotFound("a"), NotFound("a"));
  EXPECT_NE(NotFound("a"), NotFound("b"));
  EXPECT_NE(NotFound("a"), Conflict("a"));
}

TEST(ResultTest, HoldsAValue) {
  Result<int> value = 7;
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, 7);
}

TEST(ResultTest, StatusOfAValueIsOk) {
  const Result<std::string> value = std::string("x");
  EXPECT_TRUE(value.status().ok());
}

TEST(ResultTest, HoldsAnError) {
  Result<std::string> error = NotFound("no such thing");
  ASSERT_FALSE(error.ok());
  EXPECT_EQ(error.status().code(), v1::NOT_FOUND);
  EXPECT_EQ(error.status().message(), "no such thing");
}

TEST(ResultTest, MovesItsValueOut) {
  Result<std::string> result = std::string(1000, 'x');
  std::string taken = std::move(result).value();
  EXPECT_EQ(taken.size(), 1000u);
}

}  // namespace
}  // namespace sessiond
