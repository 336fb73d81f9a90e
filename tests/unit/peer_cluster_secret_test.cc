#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "replication/cluster/cluster_secret.h"

namespace sessiond {
namespace {

// A file under the test's temporary directory, removed at the end.
class SecretFile {
 public:
  explicit SecretFile(const std::string& contents) {
    const char* dir = std::getenv("TEST_TMPDIR");
    path_ = std::string(dir != nullptr ? dir : "/tmp") + "/sessiond-secret-XXXXXX";
    const int fd = ::mkstemp(path_.data());
    EXPECT_GE(fd, 0);
    ::close(fd);
    std::ofstream(path_, std::ios::binary) << contents;
    ::chmod(path_.c_str(), 0600);
  }
  ~SecretFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ClusterSecretTest, ReadsTheSecretWithoutTrailingWhitespace) {
  SecretFile file("kQ9m2ZtW0pLx7Rv4Yb8sNc1Hd6Jf3Ge5\n");
  Result<std::string> secret = LoadClusterSecret(file.path());
  ASSERT_TRUE(secret.ok()) << secret.status().ToString();
  EXPECT_EQ(*secret, "kQ9m2ZtW0pLx7Rv4Yb8sNc1Hd6Jf3Ge5");
}

TEST(ClusterSecretTest, ShortSecretIsRefusedWithAHint) {
  SecretFile file("hunter2\n");
  Result<std::string> secret = LoadClusterSecret(file.path());
  ASSERT_FALSE(secret.ok());
  EXPECT_EQ(secret.status().code(), v1::INVALID_ARGUMENT);
  EXPECT_NE(secret.status().message().find("openssl rand"), std::string::npos)
      << secret.status().message();
}

TEST(ClusterSecretTest, MissingFileNamesThePath) {
  Result<std::string> secret = LoadClusterSecret("/nonexistent/sessiond/secret");
  ASSERT_FALSE(secret.ok());
  EXPECT_NE(secret.status().message().find("/nonexistent/sessiond/secret"), std::string::npos);
}

}  // namespace
}  // namespace sessiond
