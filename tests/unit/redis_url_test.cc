// RedisUrl: parsing redis:// and rediss:// URLs and reading a password file.
#include "replication/redis/redis_url.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace sessiond {
namespace {

TEST(RedisUrlTest, ParsesEveryPart) {
  Result<RedisUrl> url = RedisUrl::Parse("redis://app:s%40cret@redis.internal:6380/3");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(url->host, "redis.internal");
  EXPECT_EQ(url->port, 6380);
  EXPECT_EQ(url->db, 3u);
  EXPECT_EQ(url->user, "app");
  EXPECT_EQ(url->password, "s@cret");
  EXPECT_EQ(url->Describe(), "redis.internal:6380/3");  // never the password
  EXPECT_FALSE(url->tls);
}

TEST(RedisUrlTest, RedissTurnsTlsOn) {
  Result<RedisUrl> url = RedisUrl::Parse("rediss://app:pw@redis.internal:6380/2");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_TRUE(url->tls);
  EXPECT_EQ(url->host, "redis.internal");
  EXPECT_EQ(url->port, 6380);
  EXPECT_EQ(url->db, 2u);
  EXPECT_EQ(url->user, "app");
  EXPECT_EQ(url->password, "pw");
  Result<RedisUrl> ip = RedisUrl::Parse("rediss://[::1]");
  ASSERT_TRUE(ip.ok()) << ip.status().ToString();
  EXPECT_TRUE(ip->tls);
  EXPECT_EQ(ip->host, "::1");
  EXPECT_EQ(ip->port, 6379);
}

TEST(RedisUrlTest, DefaultsAndPasswordOnly) {
  Result<RedisUrl> url = RedisUrl::Parse("redis://secret@[::1]");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 6379);
  EXPECT_EQ(url->db, 0u);
  EXPECT_EQ(url->user, "");
  EXPECT_EQ(url->password, "secret");
  EXPECT_EQ(url->Describe(), "[::1]:6379/0");
}

TEST(RedisUrlTest, RejectsWhatItCannotUse) {
  for (const char* bad : {"http://h:1/0", "redis://h:0/0", "redis://h:70000/0", "redis://h:1/x",
                          "redis://:1/0", "redis://u:%zz@h:1/0"}) {
    Result<RedisUrl> url = RedisUrl::Parse(bad);
    ASSERT_FALSE(url.ok()) << bad;
    EXPECT_EQ(url.status().code(), v1::INVALID_ARGUMENT) << bad;
    EXPECT_NE(url.status().message().find("redis://"), std::string::npos) << bad;
  }
  for (const char* bad : {"redis+tls://h:1/0", "rediss:/h:1/0", "rediss://h:0/0", "rediss://"}) {
    Result<RedisUrl> url = RedisUrl::Parse(bad);
    ASSERT_FALSE(url.ok()) << bad;
    EXPECT_NE(url.status().message().find("rediss://"), std::string::npos) << bad;
  }
}

TEST(RedisUrlTest, ReadsThePasswordFromAFile) {
  const std::string path = ::testing::TempDir() + "/redis_url_test_password";
  {
    std::ofstream out(path);
    out << "from-file\n";
  }
  RedisUrl url;
  ASSERT_TRUE(url.LoadPasswordFile(path).ok());
  EXPECT_EQ(url.password, "from-file");
  std::remove(path.c_str());
  Status missing = url.LoadPasswordFile(path);
  EXPECT_EQ(missing.code(), v1::INVALID_ARGUMENT);
  EXPECT_NE(missing.message().find(path), std::string::npos);
}

}  // namespace
}  // namespace sessiond
