#include "tests/support/redis_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

namespace sessiond::test {
namespace {

using namespace std::chrono_literals;

// How often Start looks at the child; short, since tests wait on it.
constexpr auto kPollInterval = 10ms;
// Tries of a fresh port when redis-server could not bind the one picked.
constexpr int kPortAttempts = 5;

std::string TestLabel() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string label =
      info == nullptr ? "no-test" : std::string(info->test_suite_name()) + "." + info->name();
  for (char& c : label) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
  }
  return label.substr(0, 80);
}

// A port that was free a moment ago: bind 127.0.0.1:0, read the port, release it.
uint16_t PickFreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// True when a server on 127.0.0.1:port answers PING within `timeout`: with +PONG, or with
// -NOAUTH when it wants a password (it is up; the test logs in later).
bool Pings(uint16_t port, std::chrono::milliseconds timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  timeval tv{};
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    static constexpr char kPing[] = "*1\r\n$4\r\nPING\r\n";
    char reply[16] = {};
    if (::write(fd, kPing, sizeof(kPing) - 1) == static_cast<ssize_t>(sizeof(kPing) - 1)) {
      const ssize_t n = ::read(fd, reply, sizeof(reply) - 1);
      ok = (n >= 5 && std::strncmp(reply, "+PONG", 5) == 0) ||
           (n >= 7 && std::strncmp(reply, "-NOAUTH", 7) == 0);
    }
  }
  ::close(fd);
  return ok;
}

// Runs `command` with /bin/sh; its output goes to `log`, which is shown when it fails.
::testing::AssertionResult RunShell(const std::string& command, const std::string& log) {
  const std::string full = "(" + command + ") >>'" + log + "' 2>&1";
  const int status = std::system(full.c_str());
  if (status == 0) return ::testing::AssertionSuccess();
  std::ifstream in(log);
  std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return ::testing::AssertionFailure() << "`" << command << "` failed (status " << status
                                       << "); is the openssl command line installed?\n"
                                       << output;
}

std::string ServerBinary() {
  const char* override_path = std::getenv("SESSIOND_REDIS_SERVER");
  return override_path != nullptr && *override_path != '\0' ? override_path : "redis-server";
}

}  // namespace

::testing::AssertionResult MakeTestPki(const std::string& dir, TestPki* pki,
                                       const std::string& server_alt_names) {
  std::error_code ignored;
  std::filesystem::create_directories(dir, ignored);
  const std::string log = dir + "/openssl.log";
  const std::string key = "-nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1";
  pki->ca_cert = dir + "/ca.crt";
  pki->ca_key = dir + "/ca.key";
  pki->server_cert = dir + "/server.crt";
  pki->server_key = dir + "/server.key";
  pki->client_cert = dir + "/client.crt";
  pki->client_key = dir + "/client.key";
  pki->other_ca_cert = dir + "/other-ca.crt";
  {
    std::ofstream(dir + "/server.ext")
        << "subjectAltName=" << server_alt_names << "\nextendedKeyUsage=serverAuth\n";
    std::ofstream(dir + "/client.ext") << "extendedKeyUsage=clientAuth\n";
  }
  const std::string in_dir = "cd '" + dir + "' && ";
  const std::vector<std::string> steps{
      "openssl req -x509 -new " + key +
          " -keyout ca.key -out ca.crt -days 2 -subj /CN=sessiond-test-ca",
      "openssl req -x509 -new " + key +
          " -keyout other-ca.key -out other-ca.crt -days 2 -subj /CN=sessiond-other-ca",
      "openssl req -new " + key + " -keyout server.key -out server.csr -subj /CN=localhost",
      "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
      "-extfile server.ext -out server.crt",
      "openssl req -new " + key +
          " -keyout client.key -out client.csr -subj /CN=sessiond-test-client",
      "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
      "-extfile client.ext -out client.crt",
  };
  for (const std::string& step : steps) {
    ::testing::AssertionResult ran = RunShell(in_dir + step, log);
    if (!ran) return ran;
  }
  return ::testing::AssertionSuccess();
}

RedisProcess::RedisProcess() {
  std::string base = ::testing::TempDir();
  if (base.empty() || base.back() != '/') base += '/';
  std::string pattern = base + "sessiond-redis-" + TestLabel() + "-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    ADD_FAILURE() << "cannot create a directory for redis-server at " << pattern << ": "
                  << std::strerror(errno);
  } else {
    dir_ = buffer.data();
  }
  log_path_ = dir_ + "/redis.log";
}

RedisProcess::~RedisProcess() {
  if (pid_ > 0) Kill9();
  if (dir_.empty()) return;
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const bool failed = info != nullptr && info->result() != nullptr && info->result()->Failed();
  if (failed) {
    std::fprintf(stderr, "[redis-server] kept its directory for a look: %s\n", dir_.c_str());
  } else {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

::testing::AssertionResult RedisProcess::Start(std::vector<std::string> extra_args,
                                               std::chrono::milliseconds timeout) {
  if (pid_ > 0) return ::testing::AssertionFailure() << "redis-server is already running";
  if (dir_.empty()) return ::testing::AssertionFailure() << "redis-server has no directory";
  extra_args_ = std::move(extra_args);
  ::testing::AssertionResult result = ::testing::AssertionFailure() << "no port tried";
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    port_ = PickFreePort();
    if (port_ == 0) return ::testing::AssertionFailure() << "cannot find a free loopback port";
    if (tls_) {
      do {
        tls_port_ = PickFreePort();
      } while (tls_port_ == port_);
      if (tls_port_ == 0) return ::testing::AssertionFailure() << "cannot find a free port";
    }
    bool exited = false;
    result = Spawn(timeout, &exited);
    if (result || !exited) return result;
  }
  return result;
}

::testing::AssertionResult RedisProcess::StartTls(RedisTlsSetup setup,
                                                  std::vector<std::string> extra_args,
                                                  std::chrono::milliseconds timeout) {
  if (pid_ > 0) return ::testing::AssertionFailure() << "redis-server is already running";
  if (dir_.empty()) return ::testing::AssertionFailure() << "redis-server has no directory";
  ::testing::AssertionResult made = MakeTestPki(dir_ + "/tls", &pki_, setup.server_alt_names);
  if (!made) return made;
  tls_ = true;
  tls_setup_ = std::move(setup);
  return Start(std::move(extra_args), timeout);
}

::testing::AssertionResult RedisProcess::Restart(std::chrono::milliseconds timeout) {
  if (pid_ > 0) return ::testing::AssertionFailure() << "redis-server is still running";
  if (port_ == 0) return ::testing::AssertionFailure() << "redis-server was never started";
  bool exited = false;
  return Spawn(timeout, &exited);
}

::testing::AssertionResult RedisProcess::Spawn(std::chrono::milliseconds timeout, bool* exited) {
  std::vector<std::string> args{ServerBinary(),
                                "--port",
                                std::to_string(port_),
                                "--bind",
                                "127.0.0.1",
                                "--save",
                                "",
                                "--appendonly",
                                "no",
                                "--dir",
                                dir_,
                                "--logfile",
                                log_path_,
                                "--daemonize",
                                "no"};
  if (tls_) {
    args.insert(args.end(),
                {"--tls-port", std::to_string(tls_port_), "--tls-cert-file", pki_.server_cert,
                 "--tls-key-file", pki_.server_key, "--tls-ca-cert-file", pki_.ca_cert,
                 "--tls-auth-clients", tls_setup_.auth_clients ? "yes" : "no"});
  }
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  std::string command_line;
  for (const std::string& arg : args) command_line += (arg.empty() ? "\"\"" : arg) + " ";

  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return ::testing::AssertionFailure() << "fork failed: " << std::strerror(errno);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int null_fd = ::open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
      ::dup2(null_fd, STDIN_FILENO);
      ::dup2(null_fd, STDOUT_FILENO);
    }
    ::execvp(argv[0], argv.data());
    static const char kExecFailed[] = "redis_process: exec of redis-server failed\n";
    (void)!::write(STDERR_FILENO, kExecFailed, sizeof(kExecFailed) - 1);
    ::_exit(127);
  }
  pid_ = pid;

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Pings(port_, 200ms)) return ::testing::AssertionSuccess();
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      *exited = true;
      return ::testing::AssertionFailure()
             << "redis-server exited before it answered PING (status " << status << "); "
             << command_line << "\n--- last lines of " << log_path_ << ":\n"
             << LogTail();
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return ::testing::AssertionFailure()
         << "redis-server did not answer PING within " << timeout.count() << " ms; " << command_line
         << "\n--- last lines of " << log_path_ << ":\n"
         << LogTail();
}

void RedisProcess::Kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

std::string RedisProcess::url(uint32_t db) const {
  return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
}

std::string RedisProcess::tls_url(uint32_t db, const std::string& host) const {
  return "rediss://" + host + ":" + std::to_string(tls_port_) + "/" + std::to_string(db);
}

std::string RedisProcess::LogTail(size_t lines) const {
  std::ifstream in(log_path_);
  std::deque<std::string> tail;
  for (std::string line; std::getline(in, line);) {
    tail.push_back(line);
    if (tail.size() > lines) tail.pop_front();
  }
  std::string out;
  for (const std::string& line : tail) out += line + "\n";
  return out;
}

}  // namespace sessiond::test
