#include "sessiond/config.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>

namespace sessiond {
namespace {

constexpr int kUsageExitCode = 2;
constexpr size_t kMaxNodeIdBytes = 64;
// sockaddr_un::sun_path holds 108 bytes including the terminating NUL.
constexpr size_t kMaxUnixPathBytes = 107;

// The flags as CLI11 fills them: text where a value needs checking that CLI11 cannot word well.
struct RawFlags {
  std::string mode = "standalone";
  std::string node_id;
  std::string listen = "127.0.0.1:7400";
  std::string unix_path;
  std::string peer_listen = "127.0.0.1:7500";
  std::vector<std::string> peers;
  std::string admin_listen = "127.0.0.1:7600";
  std::string redis_url;
  std::string redis_password_file;
  std::string redis_tls_ca_file;
  std::string redis_tls_cert_file;
  std::string redis_tls_key_file;
  bool redis_near_cache = false;
  std::string replication_ack;  // "" = the mode's default
  uint32_t backups = 1;
  bool backup_move_on_access = true;
  uint32_t backup_move_after = 1;
  uint32_t backup_ack_timeout_ms = 2000;
  uint32_t backup_fetch_timeout_ms = 2000;
  uint32_t backup_handoff_timeout_ms = 5000;
  std::string cluster_secret_file;
  std::string cluster_name = "sessiond";
  std::string peer_advertise;
  uint32_t peer_dead_after_ms = 1800;
  std::string log_level = "info";
  std::string port_file;
  uint64_t max_frame_bytes = 16u << 20;
  uint64_t max_value_bytes = SessionLimits{}.max_value_bytes;
  uint64_t max_attributes = SessionLimits{}.max_attributes;
  uint64_t max_sessions = SessionLimits{}.max_sessions;
  uint32_t default_max_idle_s = SessionLimits{}.default_max_idle_s;
  uint32_t max_connections = 10'000;
  uint32_t max_inflight_per_connection = 1024;
};

std::string HostName() {
  char name[HOST_NAME_MAX + 1] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "sessiond";
  return name;
}

void AddFlags(CLI::App& app, RawFlags& f) {
  app.set_config("--config", "",
                 "Read flags from this TOML or INI file (`listen = \"0.0.0.0:7400\"`); flags given "
                 "on the command line win over the file.");
  app.add_option("--mode", f.mode,
                 "How sessions live on the cluster: standalone (one node), delta (every node holds "
                 "every session), backup (a primary and --backups copies) or redis (in Redis).")
      ->capture_default_str()
      ->type_name("MODE");
  app.add_option("--node-id", f.node_id,
                 "This node's name in the cluster, unique per node (letters, digits, '.', '_', "
                 "'-'); defaults to the host name.")
      ->type_name("ID");
  app.add_option("--listen", f.listen,
                 "HOST:PORT where clients connect over TCP; port 0 picks a free port.")
      ->capture_default_str()
      ->type_name("HOST:PORT");
  app.add_option("--unix", f.unix_path,
                 "Also accept clients on a Unix socket at this path (a stale socket file there is "
                 "replaced).")
      ->type_name("PATH");
  app.add_option(
         "--peer-listen", f.peer_listen,
         "HOST:PORT where the other nodes of the cluster connect; port 0 picks a free port.")
      ->capture_default_str()
      ->type_name("HOST:PORT");
  app.add_option("--peers", f.peers,
                 "The other nodes' peer addresses as H:P,H:P (repeatable); the seed list of the "
                 "cluster.")
      ->delimiter(',')
      ->type_name("H:P,H:P");
  app.add_option(
         "--admin-listen", f.admin_listen,
         "HOST:PORT of the admin HTTP endpoint (/healthz, /readyz, /metrics, /cluster); port "
         "0 picks a free port.")
      ->capture_default_str()
      ->type_name("HOST:PORT");
  app.add_option(
         "--redis", f.redis_url,
         "The Redis that redis mode keeps sessions in: redis://[user:password@]HOST:PORT/DB, or "
         "rediss://... for TLS (the server's certificate must name HOST).")
      ->type_name("URL");
  app.add_option("--redis-password-file", f.redis_password_file,
                 "Read the Redis password from this file rather than from the --redis URL, so it "
                 "does not show in the process list.")
      ->type_name("PATH");
  app.add_option("--redis-tls-ca-file", f.redis_tls_ca_file,
                 "With rediss://, the PEM file of the CA certificates Redis's certificate must "
                 "chain to; default: the system trust store.")
      ->type_name("PATH");
  app.add_option("--redis-tls-cert-file", f.redis_tls_cert_file,
                 "With rediss://, a PEM client certificate to present, for a Redis with "
                 "tls-auth-clients yes; needs --redis-tls-key-file.")
      ->type_name("PATH");
  app.add_option("--redis-tls-key-file", f.redis_tls_key_file,
                 "With rediss://, the PEM private key of --redis-tls-cert-file (unencrypted).")
      ->type_name("PATH");
  app.add_flag("--redis-near-cache", f.redis_near_cache,
               "In redis mode, keep recently read sessions in memory and drop them when Redis "
               "says they changed.");
  app.add_option(
         "--replication-ack", f.replication_ack,
         "When a write is answered: sync (after every replica applied it) or async (at once; "
         "a write can be lost if this node dies within the replication delay). Default: async "
         "in delta mode, sync in backup mode.")
      ->type_name("sync|async");
  app.add_option("--backups", f.backups,
                 "In backup mode, how many other nodes hold a full copy of each session.")
      ->capture_default_str()
      ->type_name("K");
  app.add_option("--backup-move-on-access", f.backup_move_on_access,
                 "In backup mode, whether a node that reads a session it is not primary of takes "
                 "ownership of it (true or false).")
      ->capture_default_str()
      ->type_name("true|false")
      ->default_str("true");
  app.add_option("--backup-move-after", f.backup_move_after,
                 "In backup mode with --backup-move-on-access true, how many accesses in a row "
                 "from one node (no other access between them) are forwarded to the primary "
                 "before the next one takes the session over; 0 moves it on the first access.")
      ->capture_default_str()
      ->type_name("N");
  app.add_option("--backup-ack-timeout-ms", f.backup_ack_timeout_ms,
                 "In backup mode with sync acks, how long a write waits for its backups (and a "
                 "create for the proxies) before it answers UNAVAILABLE.")
      ->capture_default_str()
      ->type_name("MS");
  app.add_option("--backup-fetch-timeout-ms", f.backup_fetch_timeout_ms,
                 "In backup mode, how long a fetch, forward or cluster-wide query may take, "
                 "retries while the cluster fails over included.")
      ->capture_default_str()
      ->type_name("MS");
  app.add_option("--backup-handoff-timeout-ms", f.backup_handoff_timeout_ms,
                 "In backup mode, how long a graceful stop may spend handing its sessions over "
                 "to other nodes.")
      ->capture_default_str()
      ->type_name("MS");
  app.add_option("--cluster-secret-file", f.cluster_secret_file,
                 "A file holding the shared secret peers prove with HMAC-SHA256 in the handshake; "
                 "without it any node that can reach the peer port may join.")
      ->type_name("PATH");
  app.add_option("--cluster-name", f.cluster_name,
                 "The cluster this node belongs to; nodes with different names refuse each "
                 "other's links, so two clusters on one network cannot merge by a typo in --peers.")
      ->capture_default_str()
      ->type_name("NAME");
  app.add_option("--peer-advertise", f.peer_advertise,
                 "The HOST:PORT other nodes should dial to reach this node's peer port, when it "
                 "differs from --peer-listen (a wildcard listen address, NAT, a proxy).")
      ->type_name("HOST:PORT");
  app.add_option("--peer-dead-after-ms", f.peer_dead_after_ms,
                 "A peer silent this long is declared dead (suspect after a little over half of "
                 "it); heartbeats go out every ninth of it, at most every 200 ms.")
      ->capture_default_str()
      ->type_name("MS");
  app.add_option("--log-level", f.log_level,
                 "How much to log: trace, debug, info, warn, error, critical or off.")
      ->capture_default_str()
      ->type_name("LEVEL");
  app.add_option("--port-file", f.port_file,
                 "Once listening, write the chosen ports to this file as one line of JSON "
                 "({\"pid\":...,\"client\":...,\"peer\":...,\"admin\":...,\"unix\":...}).")
      ->type_name("PATH");
  app.add_option("--max-frame-bytes", f.max_frame_bytes,
                 "Largest protocol frame accepted or sent (e.g. 16MiB); a larger request is "
                 "answered TOO_LARGE and its connection closed.")
      ->transform(CLI::AsSizeValue(false).description(""))
      ->capture_default_str()
      ->type_name("SIZE");
  app.add_option(
         "--max-value-bytes", f.max_value_bytes,
         "Largest attribute value accepted (e.g. 1MiB); a larger one is answered TOO_LARGE.")
      ->transform(CLI::AsSizeValue(false).description(""))
      ->capture_default_str()
      ->type_name("SIZE");
  app.add_option("--max-attributes", f.max_attributes,
                 "Most attributes one session may hold; more is answered RESOURCE_EXHAUSTED.")
      ->capture_default_str()
      ->type_name("N");
  app.add_option("--max-sessions", f.max_sessions,
                 "Most sessions this node holds; a create beyond is answered RESOURCE_EXHAUSTED.")
      ->capture_default_str()
      ->type_name("N");
  app.add_option("--max-connections", f.max_connections,
                 "Most client connections at once; one more is answered RESOURCE_EXHAUSTED and "
                 "closed.")
      ->capture_default_str()
      ->type_name("N");
  app.add_option("--default-max-idle-s", f.default_max_idle_s,
                 "Idle timeout in seconds of a session whose create names none.")
      ->capture_default_str()
      ->type_name("SECONDS");
  app.add_option(
         "--max-inflight-per-connection", f.max_inflight_per_connection,
         "Most requests of one connection being worked on at once; the daemon stops reading "
         "that connection until some are answered.")
      ->capture_default_str()
      ->type_name("N");
}

Status ParseTcpEndpoint(std::string_view flag, const std::string& text, Endpoint* out) {
  Result<Endpoint> endpoint = Endpoint::Parse(text);
  if (!endpoint.ok() || endpoint->kind != Endpoint::Kind::kTcp || endpoint->host.empty()) {
    return InvalidArgument(std::string(flag) + " '" + text +
                           "' is not an address; give HOST:PORT such as 127.0.0.1:7400 (port 0 "
                           "picks a free port)");
  }
  *out = std::move(endpoint).value();
  return Status::Ok();
}

// The whole file without trailing whitespace, so "echo secret > file" works.
Status ReadSecretFile(std::string_view flag, const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return InvalidArgument(std::string(flag) + " '" + path + "' cannot be read: " +
                           std::strerror(errno) + "; check the path and its permissions");
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string secret = text.str();
  while (!secret.empty() && std::isspace(static_cast<unsigned char>(secret.back()))) {
    secret.pop_back();
  }
  if (secret.empty()) {
    return InvalidArgument(std::string(flag) + " '" + path + "' is empty; put the secret in it");
  }
  *out = std::move(secret);
  return Status::Ok();
}

bool IsNodeIdChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

Status Check(bool ok, std::string sentence) {
  return ok ? Status::Ok() : InvalidArgument(std::move(sentence));
}

// A file sessiond will open later: checked now, so a typo fails at start with the flag's name.
Status CheckReadableFile(std::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return InvalidArgument(std::string(flag) + " '" + path + "' cannot be read: " +
                           std::strerror(errno) + "; check the path and its permissions");
  }
  return Status::Ok();
}

// The --redis-tls-* flags: only with a rediss:// --redis, the certificate with its key.
Status BuildRedisTls(const RawFlags& f, DaemonConfig* c) {
  c->redis_tls = RedisTlsOptions{f.redis_tls_ca_file, f.redis_tls_cert_file, f.redis_tls_key_file};
  const bool any = !f.redis_tls_ca_file.empty() || !f.redis_tls_cert_file.empty() ||
                   !f.redis_tls_key_file.empty();
  if (!any) return Status::Ok();
  if (!c->redis || !c->redis->tls) {
    return InvalidArgument(
        "--redis-tls-ca-file, --redis-tls-cert-file and --redis-tls-key-file apply to TLS "
        "connections only; name the Redis with rediss://HOST:PORT/DB to turn TLS on");
  }
  if (f.redis_tls_cert_file.empty() != f.redis_tls_key_file.empty()) {
    return InvalidArgument(
        "--redis-tls-cert-file and --redis-tls-key-file go together; give both (a client "
        "certificate and its key) or neither");
  }
  for (const auto& [flag, path] : {std::pair{"--redis-tls-ca-file", &f.redis_tls_ca_file},
                                   std::pair{"--redis-tls-cert-file", &f.redis_tls_cert_file},
                                   std::pair{"--redis-tls-key-file", &f.redis_tls_key_file}}) {
    if (path->empty()) continue;
    if (Status s = CheckReadableFile(flag, *path); !s.ok()) return s;
  }
  return Status::Ok();
}

// Turns what CLI11 filled into a DaemonConfig, with a sentence for the first bad value.
Status BuildConfig(const RawFlags& f, DaemonConfig* c) {
  if (f.mode == "standalone") {
    c->mode = DaemonMode::kStandalone;
  } else if (f.mode == "delta") {
    c->mode = DaemonMode::kDelta;
  } else if (f.mode == "backup") {
    c->mode = DaemonMode::kBackup;
  } else if (f.mode == "redis") {
    c->mode = DaemonMode::kRedis;
  } else {
    return InvalidArgument("--mode '" + f.mode +
                           "' is not a mode; use standalone, delta, backup or redis");
  }

  c->node_id = f.node_id.empty() ? HostName() : f.node_id;
  if (c->node_id.size() > kMaxNodeIdBytes ||
      !std::all_of(c->node_id.begin(), c->node_id.end(), IsNodeIdChar)) {
    return InvalidArgument("--node-id '" + c->node_id +
                           "' is not a node id; use at most 64 letters, digits, '.', '_' or '-'");
  }

  if (Status s = ParseTcpEndpoint("--listen", f.listen, &c->listen); !s.ok()) return s;
  if (Status s = ParseTcpEndpoint("--peer-listen", f.peer_listen, &c->peer_listen); !s.ok()) {
    return s;
  }
  if (Status s = ParseTcpEndpoint("--admin-listen", f.admin_listen, &c->admin_listen); !s.ok()) {
    return s;
  }
  c->peers.clear();
  for (const std::string& peer : f.peers) {
    if (peer.empty()) continue;
    Endpoint endpoint;
    if (Status s = ParseTcpEndpoint("--peers", peer, &endpoint); !s.ok()) return s;
    if (endpoint.port == 0) {
      return InvalidArgument("--peers '" + peer +
                             "' has port 0; name the port the peer listens on");
    }
    c->peers.push_back(std::move(endpoint));
  }

  c->unix_path = f.unix_path;
  if (Status s = Check(c->unix_path.size() <= kMaxUnixPathBytes,
                       "--unix '" + c->unix_path + "' is longer than " +
                           std::to_string(kMaxUnixPathBytes) +
                           " bytes, the most a Unix socket path may have; use a shorter path");
      !s.ok()) {
    return s;
  }

  c->redis.reset();
  if (!f.redis_url.empty()) {
    Result<RedisUrl> target = RedisUrl::Parse(f.redis_url);
    if (!target.ok()) return InvalidArgument("--redis: " + target.status().message());
    c->redis = std::move(target).value();
  }
  if (!f.redis_password_file.empty()) {
    if (!c->redis) {
      return InvalidArgument("--redis-password-file is set but --redis is not; name the Redis too");
    }
    if (Status s =
            ReadSecretFile("--redis-password-file", f.redis_password_file, &c->redis->password);
        !s.ok()) {
      return s;
    }
  }
  if (c->mode == DaemonMode::kRedis && !c->redis) {
    return InvalidArgument("--mode redis needs --redis redis://HOST:PORT/DB naming the Redis");
  }
  if (Status s = BuildRedisTls(f, c); !s.ok()) return s;
  c->redis_near_cache = f.redis_near_cache;

  if (f.replication_ack.empty()) {
    c->replication_ack =
        c->mode == DaemonMode::kBackup ? ReplicationAck::kSync : ReplicationAck::kAsync;
  } else if (f.replication_ack == "sync") {
    c->replication_ack = ReplicationAck::kSync;
  } else if (f.replication_ack == "async") {
    c->replication_ack = ReplicationAck::kAsync;
  } else {
    return InvalidArgument("--replication-ack '" + f.replication_ack +
                           "' is not an ack policy; use sync or async");
  }
  if (Status s = Check(f.backups <= 16,
                       "--backups " + std::to_string(f.backups) + " is more than 16; use 0 to 16");
      !s.ok()) {
    return s;
  }
  c->backups = f.backups;
  c->backup_move_on_access = f.backup_move_on_access;
  if (Status s = Check(f.backup_move_after <= 1000, "--backup-move-after " +
                                                        std::to_string(f.backup_move_after) +
                                                        " is out of range; use 0 to 1000");
      !s.ok()) {
    return s;
  }
  c->backup_move_after = f.backup_move_after;
  const std::pair<const char*, uint32_t> timeouts[] = {
      {"--backup-ack-timeout-ms", f.backup_ack_timeout_ms},
      {"--backup-fetch-timeout-ms", f.backup_fetch_timeout_ms},
      {"--backup-handoff-timeout-ms", f.backup_handoff_timeout_ms},
  };
  for (const auto& [flag, ms] : timeouts) {
    if (Status s = Check(ms >= 10 && ms <= 600'000, std::string(flag) + " " + std::to_string(ms) +
                                                        " is out of range; use 10 to 600000");
        !s.ok()) {
      return s;
    }
  }
  c->backup_ack_timeout = std::chrono::milliseconds(f.backup_ack_timeout_ms);
  c->backup_fetch_timeout = std::chrono::milliseconds(f.backup_fetch_timeout_ms);
  c->backup_handoff_timeout = std::chrono::milliseconds(f.backup_handoff_timeout_ms);

  c->cluster_secret.clear();
  if (!f.cluster_secret_file.empty()) {
    if (Status s =
            ReadSecretFile("--cluster-secret-file", f.cluster_secret_file, &c->cluster_secret);
        !s.ok()) {
      return s;
    }
  }

  if (f.cluster_name.empty()) {
    return InvalidArgument("--cluster-name is empty; name the cluster (every node the same)");
  }
  c->cluster_name = f.cluster_name;
  c->peer_advertise.clear();
  if (!f.peer_advertise.empty()) {
    Endpoint advertise;
    if (Status s = ParseTcpEndpoint("--peer-advertise", f.peer_advertise, &advertise); !s.ok()) {
      return s;
    }
    if (advertise.port == 0) {
      return InvalidArgument("--peer-advertise '" + f.peer_advertise +
                             "' has port 0; name the port peers can actually dial");
    }
    c->peer_advertise = advertise.ToString();
  }
  if (Status s = Check(f.peer_dead_after_ms >= 100 && f.peer_dead_after_ms <= 600'000,
                       "--peer-dead-after-ms " + std::to_string(f.peer_dead_after_ms) +
                           " is out of range; use 100 to 600000");
      !s.ok()) {
    return s;
  }
  c->peer_dead_after = std::chrono::milliseconds(f.peer_dead_after_ms);

  static constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                                 "error", "critical", "off"};
  if (std::find(std::begin(kLevels), std::end(kLevels), f.log_level) == std::end(kLevels)) {
    return InvalidArgument(
        "--log-level '" + f.log_level +
        "' is not a level; use trace, debug, info, warn, error, critical or off");
  }
  c->log_level = f.log_level;
  c->port_file = f.port_file;

  // The frame length field is 32 bits; below 1 KiB not even a small session fits.
  if (Status s = Check(f.max_frame_bytes >= 1024 && f.max_frame_bytes <= (1u << 30),
                       "--max-frame-bytes " + std::to_string(f.max_frame_bytes) +
                           " is out of range; use 1KiB to 1GiB");
      !s.ok()) {
    return s;
  }
  c->max_frame_bytes = f.max_frame_bytes;
  if (Status s = Check(f.max_value_bytes >= 1 && f.max_value_bytes < f.max_frame_bytes,
                       "--max-value-bytes " + std::to_string(f.max_value_bytes) +
                           " must be at least 1 and below --max-frame-bytes (" +
                           std::to_string(f.max_frame_bytes) + ")");
      !s.ok()) {
    return s;
  }
  c->limits.max_value_bytes = f.max_value_bytes;
  if (Status s = Check(f.max_attributes >= 1, "--max-attributes must be at least 1"); !s.ok()) {
    return s;
  }
  c->limits.max_attributes = f.max_attributes;
  if (Status s = Check(f.max_sessions >= 1, "--max-sessions must be at least 1"); !s.ok()) {
    return s;
  }
  c->limits.max_sessions = f.max_sessions;
  if (Status s =
          Check(f.default_max_idle_s >= 1 && f.default_max_idle_s <= c->limits.max_idle_limit_s,
                "--default-max-idle-s " + std::to_string(f.default_max_idle_s) +
                    " is out of range; use 1 to " + std::to_string(c->limits.max_idle_limit_s) +
                    " seconds");
      !s.ok()) {
    return s;
  }
  c->limits.default_max_idle_s = f.default_max_idle_s;
  if (Status s = Check(f.max_connections >= 1, "--max-connections must be at least 1"); !s.ok()) {
    return s;
  }
  c->max_connections = f.max_connections;
  if (Status s =
          Check(f.max_inflight_per_connection >= 1 && f.max_inflight_per_connection <= 65536,
                "--max-inflight-per-connection " + std::to_string(f.max_inflight_per_connection) +
                    " is out of range; use 1 to 65536");
      !s.ok()) {
    return s;
  }
  c->max_inflight_per_connection = f.max_inflight_per_connection;
  return Status::Ok();
}

ParsedCommandLine UsageError(std::string sentence) {
  ParsedCommandLine parsed;
  parsed.exit_code = kUsageExitCode;
  parsed.output = "sessiond: " + std::move(sentence) + "\nRun with --help for every flag.\n";
  return parsed;
}

}  // namespace

std::string_view DaemonModeName(DaemonMode mode) {
  switch (mode) {
    case DaemonMode::kStandalone:
      return "standalone";
    case DaemonMode::kDelta:
      return "delta";
    case DaemonMode::kBackup:
      return "backup";
    case DaemonMode::kRedis:
      return "redis";
  }
  return "unknown";
}

ParsedCommandLine ParseDaemonConfig(int argc, const char* const* argv) {
  CLI::App app(
      "sessiond: a session clustering daemon. Each application server node runs one beside it; "
      "it keeps HTTP sessions available to every node of the cluster.",
      "sessiond");
  app.get_formatter()->column_width(36);
  // A misspelt key in the config file must not be ignored silently.
  app.allow_config_extras(CLI::config_extras_mode::error);
  RawFlags flags;
  AddFlags(app, flags);

  std::ostringstream out;
  std::ostringstream err;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    ParsedCommandLine parsed;
    parsed.exit_code = app.exit(e, out, err);
    parsed.output = out.str();
    return parsed;
  } catch (const CLI::CallForAllHelp& e) {
    ParsedCommandLine parsed;
    parsed.exit_code = app.exit(e, out, err);
    parsed.output = out.str();
    return parsed;
  } catch (const CLI::ConfigError& e) {
    return UsageError(std::string("the --config file has a line that sets no flag (") + e.what() +
                      "); its keys are flag names without the leading --, e.g. listen = "
                      "\"127.0.0.1:7400\"");
  } catch (const CLI::ConversionError& e) {
    return UsageError(std::string(e.what()) +
                      "; give a number (sizes may have a unit, e.g. 16MiB)");
  } catch (const CLI::ParseError& e) {
    return UsageError(e.what());
  }

  DaemonConfig config;
  if (Status s = BuildConfig(flags, &config); !s.ok()) return UsageError(s.message());
  ParsedCommandLine parsed;
  parsed.config = std::move(config);
  return parsed;
}

ParsedCommandLine ParseDaemonConfig(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  argv.reserve(args.size() + 1);
  argv.push_back("sessiond");
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  return ParseDaemonConfig(static_cast<int>(argv.size()), argv.data());
}

}  // namespace sessiond
