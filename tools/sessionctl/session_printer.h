// SessionPrinter: how sessionctl shows what a daemon answered, readably for a person or, with
// --json, as protobuf JSON for scripts (one JSON document per line).
#ifndef SESSIOND_TOOLS_SESSIONCTL_SESSION_PRINTER_H_
#define SESSIOND_TOOLS_SESSIONCTL_SESSION_PRINTER_H_

#include <ostream>
#include <string_view>
#include <vector>

#include "sessiond/status.h"
#include "sessiond/v1/sessiond.pb.h"

namespace sessiond::sessionctl {

class SessionPrinter {
 public:
  // Writes to `out`, which must outlive the printer.
  SessionPrinter(std::ostream& out, bool json) : out_(out), json_(json) {}

  void PrintSession(const v1::Session& session);
  void PrintSessions(const std::vector<v1::Session>& sessions);
  // One event per line, flushed at once so that `watch | grep` sees it live.
  void PrintEvent(const v1::SessionEvent& event);
  void PrintStats(const v1::NodeStats& stats);
  // The admin endpoint's /cluster JSON: as is with --json, as a table otherwise. Returns
  // INTERNAL when the text is not the JSON /cluster serves.
  Status PrintCluster(std::string_view cluster_json);
  // "<digest>  <n> sessions  node <id>" from the admin endpoint's /digest answer.
  Status PrintDigest(std::string_view digest_json);
  // A one-line confirmation ("invalidated ...") or, with --json, `json_object`.
  void PrintDone(std::string_view sentence, std::string_view json_object);

 private:
  void PrintJson(const google::protobuf::Message& message);

  std::ostream& out_;
  const bool json_;
};

}  // namespace sessiond::sessionctl

#endif  // SESSIOND_TOOLS_SESSIONCTL_SESSION_PRINTER_H_
