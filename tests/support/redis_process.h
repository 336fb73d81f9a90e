// RedisProcess: a real redis-server for a test, on 127.0.0.1 and a free port, in a fresh
// directory, with persistence off.
//
//   RedisProcess redis;
//   ASSERT_TRUE(redis.Start());
//   ... redis.url() ...
//   redis.Kill9();            // an outage
//   ASSERT_TRUE(redis.Restart());  // back on the same port, empty
//
// Redis 7 cannot listen on port 0 and report the port, so Start() picks one by binding
// 127.0.0.1:0 and releasing it, then starts redis-server on it; if another process took the
// port meanwhile and redis-server exits, it tries a fresh port (a few times). It waits
// (bounded) until the server answers PING. The child is killed if the test process dies
// (PR_SET_PDEATHSIG), and by the destructor. The directory (redis.log) is removed when the
// test passed and kept (its path printed) when it failed.
//
// The binary is `redis-server` from PATH, or $SESSIOND_REDIS_SERVER when set.
//
// TLS: StartTls() also opens a TLS port, with a throwaway CA, server and client certificates
// that it makes in its directory with the `openssl` command line (MakeTestPki). The plain port
// stays open too, for readiness checks and for tests that look into Redis directly.
//
//   RedisProcess redis;
//   ASSERT_TRUE(redis.StartTls({.auth_clients = true}));
//   ... redis.tls_url() ... redis.pki().ca_cert ... redis.pki().client_cert ...
//
// Threading: use a RedisProcess from one test thread.
#ifndef SESSIOND_TESTS_SUPPORT_REDIS_PROCESS_H_
#define SESSIOND_TESTS_SUPPORT_REDIS_PROCESS_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace sessiond::test {

// A throwaway PKI for TLS tests, as PEM files: a CA, a server certificate and a client
// certificate it signed, and an unrelated CA that signed neither.
struct TestPki {
  std::string ca_cert;
  std::string ca_key;
  std::string server_cert;
  std::string server_key;
  std::string client_cert;
  std::string client_key;
  std::string other_ca_cert;
};

// Makes a TestPki in `dir` with the openssl command line (EC P-256 keys, valid two days); the
// server certificate names `server_alt_names` (an openssl subjectAltName value). Fails with
// openssl's output when it cannot.
::testing::AssertionResult MakeTestPki(const std::string& dir, TestPki* pki,
                                       const std::string& server_alt_names);

struct RedisTlsSetup {
  // tls-auth-clients: whether Redis demands a client certificate signed by the test CA.
  bool auth_clients = false;
  // What the server certificate names.
  std::string server_alt_names = "DNS:localhost,IP:127.0.0.1";
};

class RedisProcess {
 public:
  RedisProcess();
  ~RedisProcess();
  RedisProcess(const RedisProcess&) = delete;
  RedisProcess& operator=(const RedisProcess&) = delete;

  // Starts redis-server with `extra_args` (e.g. {"--maxmemory", "1mb"}) after sessiond's
  // defaults (--save "" --appendonly no), and waits up to `timeout` for PING to answer.
  ::testing::AssertionResult Start(std::vector<std::string> extra_args = {},
                                   std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // SIGKILL, then reaps the process. Its port is kept for Restart().
  void Kill9();
  // As Start(), with a TLS port as well (a second free port), its certificates made by
  // MakeTestPki in dir()/tls.
  ::testing::AssertionResult StartTls(RedisTlsSetup setup = {},
                                      std::vector<std::string> extra_args = {},
                                      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Starts redis-server again on the same port with the same arguments (and, persistence being
  // off, no data), and waits for PING.
  ::testing::AssertionResult Restart(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  // "redis://127.0.0.1:PORT/DB".
  std::string url(uint32_t db = 0) const;
  // After StartTls: the TLS port, and "rediss://HOST:TLS_PORT/DB".
  uint16_t tls_port() const { return tls_port_; }
  std::string tls_url(uint32_t db = 0, const std::string& host = "127.0.0.1") const;
  // After StartTls: the certificates.
  const TestPki& pki() const { return pki_; }
  const std::string& dir() const { return dir_; }
  // The last `lines` lines of redis.log.
  std::string LogTail(size_t lines = 30) const;

 private:
  // Spawns redis-server on port_; waits for PING. Sets *exited when the child died at start
  // (most likely: the port was taken).
  ::testing::AssertionResult Spawn(std::chrono::milliseconds timeout, bool* exited);

  std::string dir_;
  std::string log_path_;
  std::vector<std::string> extra_args_;
  uint16_t port_ = 0;
  bool tls_ = false;
  RedisTlsSetup tls_setup_;
  uint16_t tls_port_ = 0;
  TestPki pki_;
  pid_t pid_ = -1;
};

}  // namespace sessiond::test

#endif  // SESSIOND_TESTS_SUPPORT_REDIS_PROCESS_H_
