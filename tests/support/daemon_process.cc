#include "tests/support/daemon_process.h"

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
#include <sstream>
#include <thread>

namespace sessiond::test {
namespace {

using namespace std::chrono_literals;

// How often Start and WaitExit look at the child; short, since tests wait on it.
constexpr auto kPollInterval = 10ms;

bool HasFlag(const std::vector<std::string>& args, const std::string& flag) {
  for (const std::string& arg : args) {
    if (arg == flag || arg.rfind(flag + "=", 0) == 0) return true;
  }
  return false;
}

// A directory name part from the running test's name, so a kept directory says whose it was.
std::string TestLabel() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string label =
      info == nullptr ? "no-test" : std::string(info->test_suite_name()) + "." + info->name();
  for (char& c : label) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
  }
  return label.substr(0, 80);
}

// The number after "key": in the port file's one line of JSON; -1 when absent.
long JsonNumber(const std::string& json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return -1;
  return std::strtol(json.c_str() + at + key.size() + 3, nullptr, 10);
}

std::string JsonString(const std::string& json, const std::string& key) {
  const std::string marker = "\"" + key + "\":\"";
  const size_t at = json.find(marker);
  if (at == std::string::npos) return "";
  std::string value;
  for (size_t i = at + marker.size(); i < json.size() && json[i] != '"'; ++i) {
    if (json[i] == '\\' && i + 1 < json.size()) ++i;
    value.push_back(json[i]);
  }
  return value;
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

DaemonProcess::DaemonProcess(std::string name) : name_(std::move(name)) {
  std::string base = ::testing::TempDir();
  if (base.empty() || base.back() != '/') base += '/';
  std::string pattern = base + "sessiond-" + TestLabel() + "-" + name_ + "-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    ADD_FAILURE() << "cannot create a directory for " << name_ << " at " << pattern << ": "
                  << std::strerror(errno);
  } else {
    dir_ = buffer.data();
  }
  log_path_ = dir_ + "/sessiond.log";
  port_file_ = dir_ + "/ports.json";
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0) Kill9();
  if (dir_.empty()) return;
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const bool failed = info != nullptr && info->result() != nullptr && info->result()->Failed();
  if (failed) {
    std::fprintf(stderr, "[daemon %s] kept its directory for a look: %s\n", name_.c_str(),
                 dir_.c_str());
  } else {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

::testing::AssertionResult DaemonProcess::Start(std::vector<std::string> args,
                                                std::chrono::milliseconds timeout) {
  if (pid_ > 0) return ::testing::AssertionFailure() << name_ << " is already running";
  if (dir_.empty()) return ::testing::AssertionFailure() << name_ << " has no directory";
  if (!HasFlag(args, "--listen")) args.insert(args.end(), {"--listen", "127.0.0.1:0"});
  if (!HasFlag(args, "--admin-listen")) args.insert(args.end(), {"--admin-listen", "127.0.0.1:0"});
  if (!HasFlag(args, "--peer-listen")) args.insert(args.end(), {"--peer-listen", "127.0.0.1:0"});
  if (HasFlag(args, "--port-file")) {
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == "--port-file") port_file_ = args[i + 1];
    }
  } else {
    args.insert(args.end(), {"--port-file", port_file_});
  }
  std::remove(port_file_.c_str());
  client_port_ = peer_port_ = admin_port_ = 0;
  unix_path_.clear();
  exit_status_ = -1;

  const std::string binary = std::string(SESSIOND_BIN_DIR) + "/sessiond";
  std::string command_line = binary;
  for (const std::string& arg : args) command_line += " " + arg;
  {
    std::ofstream log(log_path_, std::ios::app);
    log << "=== " << command_line << "\n";
  }

  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return ::testing::AssertionFailure()
           << "cannot open " << log_path_ << ": " << std::strerror(errno);
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return ::testing::AssertionFailure() << "fork failed: " << std::strerror(errno);
  }
  if (pid == 0) {
    // The daemon must not outlive a test process that crashed or was killed.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::execv(binary.c_str(), argv.data());
    static const char kExecFailed[] = "daemon_process: execv of sessiond failed\n";
    (void)!::write(STDERR_FILENO, kExecFailed, sizeof(kExecFailed) - 1);
    ::_exit(127);
  }
  ::close(log_fd);
  pid_ = pid;

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ReadPortFile()) return ::testing::AssertionSuccess();
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_status_ = DecodeWaitStatus(status);
      pid_ = -1;
      return ::testing::AssertionFailure()
             << name_ << " exited with status " << exit_status_ << " before it listened; "
             << command_line << "\n--- last lines of " << log_path_ << ":\n"
             << LogTail();
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return ::testing::AssertionFailure()
         << name_ << " wrote no port file within " << timeout.count() << " ms; " << command_line
         << "\n--- last lines of " << log_path_ << ":\n"
         << LogTail();
}

bool DaemonProcess::ReadPortFile() {
  std::ifstream in(port_file_);
  if (!in) return false;
  std::string json;
  std::getline(in, json);
  // The daemon renames a complete file into place, but be strict anyway.
  if (json.empty() || json.back() != '}') return false;
  const long client = JsonNumber(json, "client");
  const long admin = JsonNumber(json, "admin");
  const long peer = JsonNumber(json, "peer");
  if (client <= 0 || client > 65535 || admin <= 0 || admin > 65535 || peer < 0) return false;
  client_port_ = static_cast<uint16_t>(client);
  admin_port_ = static_cast<uint16_t>(admin);
  peer_port_ = static_cast<uint16_t>(peer);
  unix_path_ = JsonString(json, "unix");
  return true;
}

Endpoint DaemonProcess::endpoint() const {
  Endpoint endpoint;
  endpoint.kind = Endpoint::Kind::kTcp;
  endpoint.host = "127.0.0.1";
  endpoint.port = client_port_;
  return endpoint;
}

std::string DaemonProcess::endpoint_text() const {
  return "127.0.0.1:" + std::to_string(client_port_);
}

std::string DaemonProcess::peer_text() const { return "127.0.0.1:" + std::to_string(peer_port_); }

std::string DaemonProcess::admin_text() const { return "127.0.0.1:" + std::to_string(admin_port_); }

ClientOptions DaemonProcess::client_options() const {
  ClientOptions options;
  options.endpoints.push_back(endpoint());
  return options;
}

Result<std::unique_ptr<Client>> DaemonProcess::Connect() const {
  return Client::Connect(client_options());
}

void DaemonProcess::Kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exit_status_ = DecodeWaitStatus(status);
  pid_ = -1;
}

void DaemonProcess::Terminate() {
  if (pid_ > 0) ::kill(pid_, SIGTERM);
}

int DaemonProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t reaped = ::waitpid(pid_, &status, WNOHANG);
    if (reaped == pid_) {
      exit_status_ = DecodeWaitStatus(status);
      pid_ = -1;
      return exit_status_;
    }
    if (reaped < 0 && errno != EINTR) return -1;
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(kPollInterval);
  }
}

Result<HttpReply> DaemonProcess::HttpGet(const std::string& path,
                                         std::chrono::milliseconds timeout) const {
  return test::HttpGet("127.0.0.1", admin_port_, path, timeout);
}

std::string DaemonProcess::LogTail(size_t lines) const {
  std::ifstream in(log_path_);
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    tail.push_back(line);
    if (tail.size() > lines) tail.pop_front();
  }
  std::string text;
  for (const std::string& kept : tail) text += kept + "\n";
  return text;
}

Result<HttpReply> HttpGet(const std::string& host, uint16_t port, const std::string& path,
                          std::chrono::milliseconds timeout) {
  const std::string where = host + ":" + std::to_string(port);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
    return InvalidArgument("HttpGet takes an IPv4 address, not " + host);
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unavailable(std::string("socket: ") + std::strerror(errno));
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  auto fail = [&](const std::string& what) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    return Unavailable(what + " " + where + " failed: " + reason);
  };
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return fail("connecting to");
  }
  const std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: " + where + "\r\nConnection: close\r\n\r\n";
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return fail("sending to");
    sent += static_cast<size_t>(n);
  }
  std::string response;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("reading from");
    }
    response.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"; the server sends Content-Length and then closes.
  HttpReply reply;
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) {
    return Unavailable(where + " did not answer with HTTP");
  }
  reply.status = std::atoi(response.c_str() + 9);
  const size_t body = response.find("\r\n\r\n");
  if (body != std::string::npos) reply.body = response.substr(body + 4);
  return reply;
}

}  // namespace sessiond::test
