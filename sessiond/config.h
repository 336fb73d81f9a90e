// DaemonConfig: everything a sessiond process is told when it starts, from its command line and
// (with --config) a TOML/INI file in which every flag may also be set.
//
// Parsing never exits the process: ParseDaemonConfig returns either a config to run with or the
// text to print and the exit code to leave with (0 after --help, 2 after a bad value), so that
// main() decides and tests can check both.
#ifndef SESSIOND_SESSIOND_CONFIG_H_
#define SESSIOND_SESSIOND_CONFIG_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "replication/redis/redis_tls_options.h"
#include "replication/redis/redis_url.h"
#include "replication/replication_ack.h"
#include "replication/session_limits.h"
#include "sessiond/endpoint.h"
#include "sessiond/status.h"

namespace sessiond {

enum class DaemonMode { kStandalone, kDelta, kBackup, kRedis };

// "standalone", "delta", "backup", "redis".
std::string_view DaemonModeName(DaemonMode mode);

struct DaemonConfig {
  DaemonMode mode = DaemonMode::kStandalone;
  std::string node_id;  // defaults to the host name
  Endpoint listen{Endpoint::Kind::kTcp, "127.0.0.1", 7400, ""};
  std::string unix_path;  // "" = no Unix socket
  Endpoint peer_listen{Endpoint::Kind::kTcp, "127.0.0.1", 7500, ""};
  std::vector<Endpoint> peers;
  Endpoint admin_listen{Endpoint::Kind::kTcp, "127.0.0.1", 7600, ""};

  std::optional<RedisUrl> redis;  // set by --redis; its password may come from a file
  RedisTlsOptions redis_tls;      // --redis-tls-*; only with a rediss:// --redis
  bool redis_near_cache = false;
  // Unless --replication-ack says otherwise: async in delta mode, sync in backup mode.
  ReplicationAck replication_ack = ReplicationAck::kAsync;
  uint32_t backups = 1;
  bool backup_move_on_access = true;
  uint32_t backup_move_after = 1;  // forwarded accesses in a row before a move
  std::chrono::milliseconds backup_ack_timeout{2000};
  std::chrono::milliseconds backup_fetch_timeout{2000};
  std::chrono::milliseconds backup_handoff_timeout{5000};
  std::string cluster_secret;  // read from --cluster-secret-file; "" = peers are not authenticated
  std::string cluster_name = "sessiond";
  std::string peer_advertise;  // "host:port" peers dial; "" = the bound --peer-listen address
  std::chrono::milliseconds peer_dead_after{1800};  // a silent peer is dead after this

  std::string log_level = "info";  // a spdlog level name
  std::string port_file;           // "" = none

  // Limits. Breaking one is a status for the client, never a crash.
  size_t max_frame_bytes = 16u << 20;
  SessionLimits limits;
  uint32_t max_connections = 10'000;
  uint32_t max_inflight_per_connection = 1024;
};

// What the command line asked for.
struct ParsedCommandLine {
  // Set when the daemon should run with it.
  std::optional<DaemonConfig> config;
  // When `config` is empty: the process exit code (0 after --help, 2 after a usage error) and
  // what to print, on stdout for help and on stderr for an error.
  int exit_code = 0;
  std::string output;
};

// Parses argv (argv[0] is the program name) and a --config file if one is named, then checks
// every value. Reads the secret files named by --redis-password-file and --cluster-secret-file.
ParsedCommandLine ParseDaemonConfig(int argc, const char* const* argv);

// Same, for tests and tools: `args` excludes the program name.
ParsedCommandLine ParseDaemonConfig(const std::vector<std::string>& args);

}  // namespace sessiond

#endif  // SESSIOND_SESSIOND_CONFIG_H_
