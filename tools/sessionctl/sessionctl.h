// Sessionctl: the admin CLI's commands, over the blocking sessiond::Client.
//
//   sessionctl [--endpoint H:P[,H:P]] [--admin H:P] [--json] [--timeout-ms N] COMMAND ...
//
// COMMAND is ping, create, get, set, rm, touch, invalidate, rotate, find, watch, stats or
// cluster (see --help). Exit codes: 0 done; 1 the daemon refused (NOT_FOUND, CONFLICT, ...);
// 2 a usage error; 3 the daemon could not be reached or was unavailable.
#ifndef SESSIOND_TOOLS_SESSIONCTL_SESSIONCTL_H_
#define SESSIOND_TOOLS_SESSIONCTL_SESSIONCTL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sessiond/client.h"
#include "sessiond/status.h"
#include "tools/sessionctl/session_printer.h"

namespace sessiond::sessionctl {

inline constexpr int kExitRefused = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnavailable = 3;

// The exit code for a daemon's status: 0, kExitRefused or kExitUnavailable.
int ExitCodeFor(const Status& status);

class Sessionctl {
 public:
  // Parses `argv`, runs the command it names, and returns the process exit code. Results go to
  // stdout, the daemon's error sentences to stderr.
  int Main(int argc, const char* const* argv);

 private:
  // Connects to the first reachable --endpoint.
  Result<std::unique_ptr<Client>> Connect() const;
  // Runs the parsed command on `client` (every command but cluster).
  int RunClientCommand(const std::string& command, Client& client, SessionPrinter& printer);
  int RunCluster(SessionPrinter& printer) const;
  // GET `path` from the admin endpoint (--admin) and hand the body to `print`.
  int RunAdmin(const char* path, const std::function<Status(std::string_view)>& print) const;
  int RunWatch(Client& client, SessionPrinter& printer);
  // Prints `status`'s sentence to stderr and returns its exit code.
  int Fail(const Status& status) const;

  // Global options.
  std::vector<std::string> endpoints_{"127.0.0.1:7400"};
  std::string admin_ = "127.0.0.1:7600";
  bool json_ = false;
  uint32_t timeout_ms_ = 5000;

  // Command arguments (each command uses those it names).
  std::string id_;
  std::vector<std::string> ids_;
  std::vector<std::string> assignments_;  // name=value
  std::vector<std::string> names_;
  bool touch_ = false;
  uint32_t idle_s_ = 0;
  uint32_t lifetime_s_ = 0;
  std::string principal_;
  bool principal_set_ = false;
  uint64_t expect_version_ = 0;
  uint64_t count_ = 0;
};

}  // namespace sessiond::sessionctl

#endif  // SESSIOND_TOOLS_SESSIONCTL_SESSIONCTL_H_
