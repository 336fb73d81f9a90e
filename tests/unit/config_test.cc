#include "sessiond/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace sessiond {
namespace {

// A file under the test temp directory, removed when the test ends.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& contents)
      : path_(::testing::TempDir() + "/config_test_" + std::to_string(::getpid()) + "_" + name) {
    std::ofstream(path_) << contents;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

DaemonConfig ParseOk(const std::vector<std::string>& args) {
  ParsedCommandLine parsed = ParseDaemonConfig(args);
  EXPECT_TRUE(parsed.config.has_value()) << parsed.output;
  return parsed.config.value_or(DaemonConfig{});
}

// Expects a usage error (exit code 2) whose sentence contains `words`.
void ExpectUsageError(const std::vector<std::string>& args, const std::string& words) {
  ParsedCommandLine parsed = ParseDaemonConfig(args);
  EXPECT_FALSE(parsed.config.has_value());
  EXPECT_EQ(parsed.exit_code, 2);
  EXPECT_NE(parsed.output.find(words), std::string::npos)
      << "expected \"" << words << "\" in: " << parsed.output;
}

TEST(DaemonConfigTest, DefaultsMatchTheDesign) {
  const DaemonConfig config = ParseOk({});
  EXPECT_EQ(config.mode, DaemonMode::kStandalone);
  EXPECT_FALSE(config.node_id.empty());
  EXPECT_EQ(config.listen.ToString(), "127.0.0.1:7400");
  EXPECT_EQ(config.peer_listen.ToString(), "127.0.0.1:7500");
  EXPECT_EQ(config.admin_listen.ToString(), "127.0.0.1:7600");
  EXPECT_TRUE(config.unix_path.empty());
  EXPECT_TRUE(config.peers.empty());
  EXPECT_FALSE(config.redis.has_value());
  EXPECT_EQ(config.replication_ack, ReplicationAck::kAsync);
  EXPECT_EQ(config.cluster_name, "sessiond");
  EXPECT_TRUE(config.peer_advertise.empty());
  EXPECT_EQ(config.peer_dead_after, std::chrono::milliseconds(1800));
  EXPECT_EQ(config.backups, 1u);
  EXPECT_TRUE(config.backup_move_on_access);
  EXPECT_EQ(config.backup_move_after, 1u);
  EXPECT_EQ(config.backup_ack_timeout, std::chrono::milliseconds(2000));
  EXPECT_EQ(config.backup_fetch_timeout, std::chrono::milliseconds(2000));
  EXPECT_EQ(config.backup_handoff_timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(config.max_frame_bytes, 16u << 20);
  EXPECT_EQ(config.max_connections, 10'000u);
  EXPECT_EQ(config.log_level, "info");
  EXPECT_TRUE(config.port_file.empty());
}

TEST(DaemonConfigTest, EveryFlagIsParsed) {
  TempFile secret("secret", "s3cret\n");
  TempFile password("password", "hunter2\n");
  const DaemonConfig config = ParseOk({"--mode",
                                       "backup",
                                       "--node-id",
                                       "node-1.a",
                                       "--listen",
                                       "0.0.0.0:0",
                                       "--unix",
                                       "/tmp/sessiond-test.sock",
                                       "--peer-listen",
                                       "127.0.0.1:7501",
                                       "--peers",
                                       "10.0.0.1:7500,10.0.0.2:7500",
                                       "--peers",
                                       "10.0.0.3:7500",
                                       "--admin-listen",
                                       "127.0.0.1:0",
                                       "--redis",
                                       "redis://app@redis.local:6380/2",
                                       "--redis-password-file",
                                       password.path(),
                                       "--redis-near-cache",
                                       "--replication-ack",
                                       "async",
                                       "--backups",
                                       "2",
                                       "--backup-move-on-access",
                                       "false",
                                       "--cluster-secret-file",
                                       secret.path(),
                                       "--log-level",
                                       "debug",
                                       "--port-file",
                                       "/tmp/ports.json",
                                       "--max-frame-bytes",
                                       "1MiB",
                                       "--max-value-bytes",
                                       "64KiB",
                                       "--max-attributes",
                                       "10",
                                       "--max-sessions",
                                       "5",
                                       "--max-connections",
                                       "7",
                                       "--default-max-idle-s",
                                       "60",
                                       "--max-inflight-per-connection",
                                       "8"});
  EXPECT_EQ(config.mode, DaemonMode::kBackup);
  EXPECT_EQ(config.node_id, "node-1.a");
  EXPECT_EQ(config.listen.host, "0.0.0.0");
  EXPECT_EQ(config.listen.port, 0);
  EXPECT_EQ(config.unix_path, "/tmp/sessiond-test.sock");
  EXPECT_EQ(config.peer_listen.port, 7501);
  ASSERT_EQ(config.peers.size(), 3u);
  EXPECT_EQ(config.peers[0].ToString(), "10.0.0.1:7500");
  EXPECT_EQ(config.peers[2].ToString(), "10.0.0.3:7500");
  EXPECT_EQ(config.admin_listen.port, 0);
  ASSERT_TRUE(config.redis.has_value());
  EXPECT_EQ(config.redis->host, "redis.local");
  EXPECT_EQ(config.redis->port, 6380);
  EXPECT_EQ(config.redis->db, 2u);
  EXPECT_EQ(config.redis->password, "hunter2");  // the file wins over the URL
  EXPECT_TRUE(config.redis_near_cache);
  EXPECT_EQ(config.replication_ack, ReplicationAck::kAsync);
  EXPECT_EQ(config.backups, 2u);
  EXPECT_FALSE(config.backup_move_on_access);
  EXPECT_EQ(config.cluster_secret, "s3cret");
  EXPECT_EQ(config.log_level, "debug");
  EXPECT_EQ(config.port_file, "/tmp/ports.json");
  EXPECT_EQ(config.max_frame_bytes, 1u << 20);
  EXPECT_EQ(config.limits.max_value_bytes, 64u << 10);
  EXPECT_EQ(config.limits.max_attributes, 10u);
  EXPECT_EQ(config.limits.max_sessions, 5u);
  EXPECT_EQ(config.max_connections, 7u);
  EXPECT_EQ(config.limits.default_max_idle_s, 60u);
  EXPECT_EQ(config.max_inflight_per_connection, 8u);
}

TEST(DaemonConfigTest, TheAckDefaultsToAsyncInDeltaAndSyncInBackup) {
  EXPECT_EQ(ParseOk({"--mode", "delta"}).replication_ack, ReplicationAck::kAsync);
  EXPECT_EQ(ParseOk({"--mode", "backup"}).replication_ack, ReplicationAck::kSync);
  EXPECT_EQ(ParseOk({"--mode", "delta", "--replication-ack", "sync"}).replication_ack,
            ReplicationAck::kSync);
  EXPECT_EQ(ParseOk({"--mode", "backup", "--replication-ack", "async"}).replication_ack,
            ReplicationAck::kAsync);
}

TEST(DaemonConfigTest, BackupFlagsAreCheckedAndKept) {
  const DaemonConfig config =
      ParseOk({"--mode", "backup", "--backup-move-after", "0", "--backup-ack-timeout-ms", "750",
               "--backup-fetch-timeout-ms", "3000", "--backup-handoff-timeout-ms", "9000"});
  EXPECT_EQ(config.backup_move_after, 0u);
  EXPECT_EQ(config.backup_ack_timeout, std::chrono::milliseconds(750));
  EXPECT_EQ(config.backup_fetch_timeout, std::chrono::milliseconds(3000));
  EXPECT_EQ(config.backup_handoff_timeout, std::chrono::milliseconds(9000));
  ExpectUsageError({"--backup-move-after", "5000"}, "out of range");
  ExpectUsageError({"--backup-ack-timeout-ms", "0"}, "out of range");
  ExpectUsageError({"--backup-fetch-timeout-ms", "5"}, "out of range");
  ExpectUsageError({"--backup-handoff-timeout-ms", "700000"}, "out of range");
}

TEST(DaemonConfigTest, ClusterFlagsAreCheckedAndKept) {
  const DaemonConfig config =
      ParseOk({"--mode", "delta", "--cluster-name", "shop", "--peer-advertise", "10.1.2.3:7500",
               "--peer-dead-after-ms", "5000"});
  EXPECT_EQ(config.cluster_name, "shop");
  EXPECT_EQ(config.peer_advertise, "10.1.2.3:7500");
  EXPECT_EQ(config.peer_dead_after, std::chrono::milliseconds(5000));
  ExpectUsageError({"--cluster-name", ""}, "cluster");
  ExpectUsageError({"--peer-advertise", "10.1.2.3:0"}, "port 0");
  ExpectUsageError({"--peer-dead-after-ms", "5"}, "out of range");
}

TEST(DaemonConfigTest, AConfigFileSetsFlagsAndTheCommandLineWins) {
  TempFile file("daemon.toml",
                "# sessiond settings\n"
                "mode = \"delta\"\n"
                "node-id = \"from-file\"\n"
                "listen = \"127.0.0.1:7411\"\n"
                "peers = [\"127.0.0.1:7501\", \"127.0.0.1:7502\"]\n"
                "max-frame-bytes = \"2MiB\"\n"
                "replication-ack = \"async\"\n"
                "redis-near-cache = true\n");
  const DaemonConfig config = ParseOk({"--config", file.path(), "--node-id", "from-flag"});
  EXPECT_EQ(config.mode, DaemonMode::kDelta);
  EXPECT_EQ(config.node_id, "from-flag");
  EXPECT_EQ(config.listen.port, 7411);
  ASSERT_EQ(config.peers.size(), 2u);
  EXPECT_EQ(config.peers[1].port, 7502);
  EXPECT_EQ(config.max_frame_bytes, 2u << 20);
  EXPECT_EQ(config.replication_ack, ReplicationAck::kAsync);
  EXPECT_TRUE(config.redis_near_cache);
}

TEST(DaemonConfigTest, AnIniStyleConfigFileWorksToo) {
  TempFile file("daemon.ini", "; sessiond\nmode=standalone\nmax-connections=12\n");
  const DaemonConfig config = ParseOk({"--config", file.path()});
  EXPECT_EQ(config.max_connections, 12u);
}

TEST(DaemonConfigTest, AMissingConfigFileIsAUsageError) {
  ExpectUsageError({"--config", "/nonexistent/sessiond.toml"}, "sessiond.toml");
}

TEST(DaemonConfigTest, AnUnknownKeyInTheConfigFileIsAUsageError) {
  TempFile file("bad.toml", "listen = \"127.0.0.1:0\"\nfrobnicate = 3\n");
  ExpectUsageError({"--config", file.path()}, "frobnicate");
}

TEST(DaemonConfigTest, BadValuesAreUsageErrorsWithASentence) {
  ExpectUsageError({"--mode", "cluster"}, "--mode 'cluster' is not a mode");
  ExpectUsageError({"--listen", "localhost"}, "--listen 'localhost' is not an address");
  ExpectUsageError({"--admin-listen", "1.2.3.4:99999"}, "--admin-listen");
  ExpectUsageError({"--peers", "127.0.0.1:0"}, "port 0");
  ExpectUsageError({"--replication-ack", "maybe"}, "use sync or async");
  ExpectUsageError({"--log-level", "loud"}, "--log-level 'loud'");
  ExpectUsageError({"--max-frame-bytes", "10"}, "--max-frame-bytes");
  ExpectUsageError({"--max-value-bytes", "32MiB"}, "below --max-frame-bytes");
  ExpectUsageError({"--max-connections", "0"}, "--max-connections");
  ExpectUsageError({"--max-inflight-per-connection", "0"}, "--max-inflight-per-connection");
  ExpectUsageError({"--default-max-idle-s", "0"}, "--default-max-idle-s");
  ExpectUsageError({"--backups", "40"}, "--backups");
  ExpectUsageError({"--node-id", "has space"}, "--node-id 'has space'");
  ExpectUsageError({"--redis", "http://127.0.0.1:6379"}, "redis://");
  ExpectUsageError({"--mode", "redis"}, "--mode redis needs --redis");
  ExpectUsageError({"--cluster-secret-file", "/nonexistent/secret"}, "cannot be read");
  ExpectUsageError({"--redis-password-file", "/nonexistent/pw"}, "--redis");
  ExpectUsageError({"--max-sessions", "lots"}, "--max-sessions");
  ExpectUsageError({"--frobnicate"}, "frobnicate");
  ExpectUsageError({"--unix", std::string(200, 'x')}, "--unix");
}

TEST(DaemonConfigTest, RedissWithTlsFiles) {
  TempFile ca("ca.pem", "ca");
  TempFile cert("cert.pem", "cert");
  TempFile key("key.pem", "key");
  const DaemonConfig config = ParseOk({"--mode", "redis", "--redis", "rediss://redis.local:6380/1",
                                       "--redis-tls-ca-file", ca.path(), "--redis-tls-cert-file",
                                       cert.path(), "--redis-tls-key-file", key.path()});
  ASSERT_TRUE(config.redis.has_value());
  EXPECT_TRUE(config.redis->tls);
  EXPECT_EQ(config.redis->host, "redis.local");
  EXPECT_EQ(config.redis_tls.ca_file, ca.path());
  EXPECT_EQ(config.redis_tls.cert_file, cert.path());
  EXPECT_EQ(config.redis_tls.key_file, key.path());

  // rediss:// alone: the system trust store, no client certificate.
  const DaemonConfig plain = ParseOk({"--mode", "redis", "--redis", "rediss://127.0.0.1:6380/0"});
  EXPECT_TRUE(plain.redis->tls);
  EXPECT_TRUE(plain.redis_tls.ca_file.empty());
  EXPECT_TRUE(plain.redis_tls.cert_file.empty());

  TempFile config_file("tls.toml",
                       "mode = \"redis\"\nredis = \"rediss://127.0.0.1:6380/0\"\n"
                       "redis-tls-ca-file = \"" +
                           ca.path() + "\"\n");
  EXPECT_EQ(ParseOk({"--config", config_file.path()}).redis_tls.ca_file, ca.path());
}

TEST(DaemonConfigTest, RedisTlsFlagsAreCheckedAtStart) {
  TempFile ca("ca2.pem", "ca");
  TempFile cert("cert2.pem", "cert");
  // TLS files without TLS: a mistake, not something to ignore.
  ExpectUsageError(
      {"--mode", "redis", "--redis", "redis://127.0.0.1:6379/0", "--redis-tls-ca-file", ca.path()},
      "rediss://");
  ExpectUsageError({"--redis-tls-ca-file", ca.path()}, "rediss://");
  ExpectUsageError({"--mode", "redis", "--redis", "rediss://127.0.0.1:6379/0",
                    "--redis-tls-cert-file", cert.path()},
                   "--redis-tls-key-file go together");
  ExpectUsageError({"--mode", "redis", "--redis", "rediss://127.0.0.1:6379/0",
                    "--redis-tls-ca-file", "/nonexistent/ca.pem"},
                   "--redis-tls-ca-file '/nonexistent/ca.pem' cannot be read");
  ExpectUsageError(
      {"--mode", "redis", "--redis", "rediss://127.0.0.1:6379/0", "--redis-tls-cert-file",
       cert.path(), "--redis-tls-key-file", "/nonexistent/key.pem"},
      "--redis-tls-key-file '/nonexistent/key.pem'");
}

TEST(DaemonConfigTest, AnEmptySecretFileIsRefused) {
  TempFile empty("empty", "\n");
  ExpectUsageError({"--cluster-secret-file", empty.path()}, "is empty");
}

TEST(DaemonConfigTest, HelpExplainsEveryFlagAndExitsZero) {
  ParsedCommandLine parsed = ParseDaemonConfig(std::vector<std::string>{"--help"});
  EXPECT_FALSE(parsed.config.has_value());
  EXPECT_EQ(parsed.exit_code, 0);
  for (const char* flag : {"--mode",
                           "--node-id",
                           "--listen",
                           "--unix",
                           "--peer-listen",
                           "--peers",
                           "--admin-listen",
                           "--redis",
                           "--redis-password-file",
                           "--redis-tls-ca-file",
                           "--redis-tls-cert-file",
                           "--redis-tls-key-file",
                           "--redis-near-cache",
                           "--replication-ack",
                           "--backups",
                           "--backup-move-on-access",
                           "--cluster-secret-file",
                           "--config",
                           "--log-level",
                           "--port-file",
                           "--max-frame-bytes",
                           "--max-value-bytes",
                           "--max-attributes",
                           "--max-sessions",
                           "--max-connections",
                           "--default-max-idle-s",
                           "--max-inflight-per-connection"}) {
    EXPECT_NE(parsed.output.find(flag), std::string::npos) << flag << " missing from --help";
  }
}

}  // namespace
}  // namespace sessiond
