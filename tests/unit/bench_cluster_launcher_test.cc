// ChildProcess, RedisServer and ClusterLauncher with real processes: sessiond and redis-server
// from the build and the system, on 127.0.0.1 with ports the system picks.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include "sessiond/client.h"
#include "tools/bench/child_process.h"
#include "tools/bench/cluster_launcher.h"
#include "tools/bench/metrics_scraper.h"
#include "tools/bench/redis_server.h"

namespace sessiond::bench {
namespace {

using namespace std::chrono_literals;

// The sessiond built next to this test binary (both land in the build's bin/), or "".
std::string SessiondBinary() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  const auto sibling = self.parent_path() / "sessiond";
  return std::filesystem::exists(sibling, ec) ? sibling.string() : "";
}

bool Alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "bench_test_XXXXXX").string();
    path_ = ::mkdtemp(pattern.data()) ? pattern : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(BenchChildProcessTest, ReportsHowAChildEndedAndWhatItSaid) {
  TempDir dir;
  auto child = ChildProcess::Spawn({"sh", "-c", "echo first; echo last words >&2; exit 3"},
                                   dir.path() + "/log");
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  ASSERT_TRUE((*child)->WaitForExit(10s));
  EXPECT_EQ((*child)->ExitDescription(), "exited with status 3");
  EXPECT_EQ((*child)->LogTail(1), "last words");
  EXPECT_FALSE((*child)->ResidentBytes().has_value());
}

TEST(BenchChildProcessTest, AProgramThatCannotRunExitsWith127) {
  TempDir dir;
  auto child = ChildProcess::Spawn({"/nonexistent/program"}, dir.path() + "/log");
  ASSERT_TRUE(child.ok());
  ASSERT_TRUE((*child)->WaitForExit(10s));
  EXPECT_EQ((*child)->ExitDescription(), "exited with status 127");
  EXPECT_NE((*child)->LogTail().find("exec failed"), std::string::npos);
}

TEST(BenchChildProcessTest, StopEndsARunningChild) {
  TempDir dir;
  auto child = ChildProcess::Spawn({"sleep", "600"}, dir.path() + "/log");
  ASSERT_TRUE(child.ok());
  const pid_t pid = (*child)->pid();
  EXPECT_TRUE((*child)->Running());
  EXPECT_GT((*child)->ResidentBytes().value_or(0), 0u);
  (*child)->Stop(5s);
  EXPECT_FALSE((*child)->Running());
  EXPECT_EQ((*child)->ExitDescription(), "killed by signal 15");
  EXPECT_FALSE(Alive(pid));
}

TEST(BenchRedisServerTest, StartsAnswersAndStops) {
  if (std::system("command -v redis-server > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "redis-server is not installed";
  }
  TempDir dir;
  auto redis = RedisServer::Start(RedisServerOptions{.dir = dir.path()});
  ASSERT_TRUE(redis.ok()) << redis.status().ToString();
  const uint16_t port = (*redis)->port();
  EXPECT_TRUE(RedisServer::Ping(port, 2s));
  EXPECT_EQ((*redis)->url(), "redis://127.0.0.1:" + std::to_string(port) + "/0");
  redis->reset();
  EXPECT_FALSE(RedisServer::Ping(port, 500ms));
}

class BenchClusterLauncherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = SessiondBinary();
    if (binary_.empty()) GTEST_SKIP() << "sessiond is not built next to the test binary";
    ASSERT_FALSE(dir_.path().empty());
  }

  ClusterOptions Options(const std::string& mode, int nodes) const {
    ClusterOptions options;
    options.sessiond_binary = binary_;
    options.mode = mode;
    options.nodes = nodes;
    options.work_dir = dir_.path();
    options.start_timeout = 20s;
    return options;
  }

  std::string binary_;
  TempDir dir_;
};

TEST_F(BenchClusterLauncherTest, StartsNodesThatServeKillsOneAndStopsAll) {
  ClusterLauncher launcher(Options("standalone", 2));
  ASSERT_TRUE(launcher.Start().ok());
  ASSERT_EQ(launcher.nodes().size(), 2u);
  for (const ClusterNode& node : launcher.nodes()) {
    EXPECT_TRUE(node.alive);
    EXPECT_NE(node.client.port, 0);
    ClientOptions client_options;
    client_options.endpoints = {node.client};
    auto client = Client::Connect(client_options);
    ASSERT_TRUE(client.ok()) << node.node_id << ": " << client.status().ToString();
    EXPECT_TRUE((*client)->Ping().ok());
    auto metrics = MetricsScraper(node.admin).Scrape();
    ASSERT_TRUE(metrics.ok()) << metrics.status().ToString();
    EXPECT_TRUE(metrics->Get(kMetricSessions).has_value());
    EXPECT_GT(launcher.ResidentBytes(node.index).value_or(0), 0u);
  }

  const pid_t victim = launcher.nodes()[1].pid;
  ASSERT_TRUE(launcher.Kill(1).ok());
  EXPECT_FALSE(launcher.nodes()[1].alive);
  EXPECT_FALSE(Alive(victim));
  EXPECT_FALSE(launcher.ResidentBytes(1).has_value());

  const pid_t survivor = launcher.nodes()[0].pid;
  launcher.Stop();
  EXPECT_FALSE(Alive(survivor));
}

TEST_F(BenchClusterLauncherTest, ReportsWhyANodeWouldNotStart) {
  ClusterLauncher launcher(Options("no-such-mode", 2));
  const Status status = launcher.Start();
  EXPECT_EQ(status.code(), v1::UNAVAILABLE);
  EXPECT_NE(status.message().find("node n1 exited with status"), std::string::npos)
      << status.message();
}

TEST_F(BenchClusterLauncherTest, MissingBinaryIsReportedNotHung) {
  ClusterOptions options = Options("standalone", 1);
  options.sessiond_binary = dir_.path() + "/no-sessiond-here";
  ClusterLauncher launcher(options);
  const Status status = launcher.Start();
  EXPECT_EQ(status.code(), v1::UNAVAILABLE);
  EXPECT_NE(status.message().find("exec failed"), std::string::npos) << status.message();
}

}  // namespace
}  // namespace sessiond::bench
