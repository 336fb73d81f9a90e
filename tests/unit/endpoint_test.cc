#include "sessiond/endpoint.h"

#include <gtest/gtest.h>

#include <string>

namespace sessiond {
namespace {

TEST(EndpointTest, ParsesHostAndPort) {
  auto endpoint = Endpoint::Parse("127.0.0.1:7400");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status().ToString();
  EXPECT_EQ(endpoint->kind, Endpoint::Kind::kTcp);
  EXPECT_EQ(endpoint->host, "127.0.0.1");
  EXPECT_EQ(endpoint->port, 7400);
  EXPECT_EQ(endpoint->ToString(), "127.0.0.1:7400");
}

TEST(EndpointTest, ParsesTcpScheme) {
  auto endpoint = Endpoint::Parse("tcp://localhost:1");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status().ToString();
  EXPECT_EQ(endpoint->host, "localhost");
  EXPECT_EQ(endpoint->port, 1);
  EXPECT_EQ(endpoint->ToString(), "localhost:1");
}

TEST(EndpointTest, ParsesBracketedIpv6) {
  auto endpoint = Endpoint::Parse("[::1]:65535");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status().ToString();
  EXPECT_EQ(endpoint->host, "::1");
  EXPECT_EQ(endpoint->port, 65535);
  EXPECT_EQ(endpoint->ToString(), "[::1]:65535");
}

TEST(EndpointTest, AcceptsPortZero) {
  // Listeners use port 0 to let the kernel pick.
  auto endpoint = Endpoint::Parse("127.0.0.1:0");
  ASSERT_TRUE(endpoint.ok());
  EXPECT_EQ(endpoint->port, 0);
}

TEST(EndpointTest, ParsesUnixForms) {
  for (const char* text : {"unix:/run/sessiond.sock", "unix:///run/sessiond.sock"}) {
    auto endpoint = Endpoint::Parse(text);
    ASSERT_TRUE(endpoint.ok()) << text << ": " << endpoint.status().ToString();
    EXPECT_EQ(endpoint->kind, Endpoint::Kind::kUnix);
    EXPECT_EQ(endpoint->path, "/run/sessiond.sock");
    EXPECT_EQ(endpoint->ToString(), "unix:/run/sessiond.sock");
  }
  auto relative = Endpoint::Parse("unix:sessiond.sock");
  ASSERT_TRUE(relative.ok());
  EXPECT_EQ(relative->path, "sessiond.sock");
}

TEST(EndpointTest, ToStringRoundTrips) {
  for (const char* text : {"10.0.0.1:80", "[fe80::1]:7400", "unix:/tmp/a.sock", "example.com:7"}) {
    auto endpoint = Endpoint::Parse(text);
    ASSERT_TRUE(endpoint.ok()) << text;
    auto again = Endpoint::Parse(endpoint->ToString());
    ASSERT_TRUE(again.ok()) << text;
    EXPECT_EQ(again->ToString(), text);
  }
}

TEST(EndpointTest, RejectsMalformedText) {
  for (const char* text :
       {"", "localhost", "127.0.0.1:", ":7400", "127.0.0.1:http", "127.0.0.1:65536", "127.0.0.1:-1",
        "127.0.0.1:74 00", "::1:7400", "[::1]", "[::1]7400", "[::1:7400", "[]:7400",
        "unix:", "unix://", "tcp://", "host name:80"}) {
    auto endpoint = Endpoint::Parse(text);
    EXPECT_FALSE(endpoint.ok()) << "accepted \"" << text << "\"";
    if (!endpoint.ok()) {
      EXPECT_EQ(endpoint.status().code(), v1::INVALID_ARGUMENT) << text;
      // The message tells the user what would have been accepted.
      EXPECT_NE(endpoint.status().message().find("HOST:PORT"), std::string::npos) << text;
    }
  }
}

TEST(EndpointTest, RejectsUnixPathTooLongForSockaddr) {
  auto endpoint = Endpoint::Parse("unix:/" + std::string(200, 'a'));
  ASSERT_FALSE(endpoint.ok());
  EXPECT_EQ(endpoint.status().code(), v1::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace sessiond
