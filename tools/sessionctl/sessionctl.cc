#include "tools/sessionctl/sessionctl.h"

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "sessiond/endpoint.h"
#include "tools/sessionctl/admin_http_client.h"

namespace sessiond::sessionctl {
namespace {

// How long one wait for a watch event lasts before waiting again; any long span will do.
constexpr std::chrono::hours kWatchWait{1};

// "name=value" -> {name, value}; the value may itself hold '='.
bool SplitAssignment(const std::string& text, std::string* name, std::string* value) {
  const size_t equals = text.find('=');
  if (equals == std::string::npos || equals == 0) return false;
  *name = text.substr(0, equals);
  *value = text.substr(equals + 1);
  return true;
}

int UsageError(const std::string& sentence) {
  std::cerr << "sessionctl: " << sentence << "\nRun with --help for the commands.\n";
  return kExitUsage;
}

}  // namespace

int ExitCodeFor(const Status& status) {
  if (status.ok()) return 0;
  return status.code() == v1::UNAVAILABLE ? kExitUnavailable : kExitRefused;
}

int Sessionctl::Fail(const Status& status) const {
  std::cerr << "sessionctl: " << StatusCodeName(status.code()) << ": " << status.message() << "\n";
  return ExitCodeFor(status);
}

int Sessionctl::Main(int argc, const char* const* argv) {
  CLI::App app("sessionctl: look at and change the sessions a sessiond daemon holds.",
               "sessionctl");
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--endpoint", endpoints_,
                 "The daemon's client address(es), H:P or unix:PATH, repeatable or comma "
                 "separated; the first that answers is used.")
      ->delimiter(',')
      ->type_name("HOST:PORT")
      ->capture_default_str();
  app.add_option("--admin", admin_, "The daemon's admin HTTP address, for `cluster` and `digest`.")
      ->type_name("HOST:PORT")
      ->capture_default_str();
  app.add_flag("--json", json_, "Print results as protobuf JSON, one document per line.");
  app.add_option("--timeout-ms", timeout_ms_, "Give up on a connect or a call after this long.")
      ->capture_default_str();

  app.add_subcommand("ping", "Check that the daemon answers, and how fast.");
  CLI::App* create = app.add_subcommand("create", "Create a session and print it.");
  create->add_option("--idle", idle_s_, "Idle timeout in seconds (default: the daemon's).");
  create->add_option("--lifetime", lifetime_s_, "Most seconds the session may live (0: no limit).");
  create->add_option("--principal", principal_, "The user the session belongs to.");
  create->add_option("--attr", assignments_, "An attribute as name=value (repeatable).")
      ->type_name("NAME=VALUE");
  CLI::App* get = app.add_subcommand("get", "Print a session.");
  get->add_option("id", id_, "The session id.")->required();
  get->add_flag("--touch", touch_, "Count this read as an access (resets the idle timeout).");
  CLI::App* set = app.add_subcommand("set", "Set attributes of a session and print it.");
  set->add_option("id", id_, "The session id.")->required();
  set->add_option("assignments", assignments_, "Attributes as name=value.")
      ->type_name("NAME=VALUE");
  set->add_option("--expect-version", expect_version_,
                  "Apply only if the session is still at this version (else CONFLICT).");
  CLI::Option* set_principal =
      set->add_option("--principal", principal_, "Also set the session's principal.");
  CLI::Option* set_idle = set->add_option("--idle", idle_s_, "Also set the idle timeout (s).");
  CLI::App* rm = app.add_subcommand("rm", "Remove attributes of a session and print it.");
  rm->add_option("id", id_, "The session id.")->required();
  rm->add_option("names", names_, "Attribute names.")->required();
  rm->add_option("--expect-version", expect_version_,
                 "Apply only if the session is still at this version (else CONFLICT).");
  CLI::App* touch = app.add_subcommand("touch", "Count an access to a session now.");
  touch->add_option("id", id_, "The session id.")->required();
  CLI::App* invalidate = app.add_subcommand("invalidate", "End a session.");
  invalidate->add_option("id", id_, "The session id.")->required();
  CLI::App* rotate =
      app.add_subcommand("rotate", "Give a session a new id (e.g. after a login); print it.");
  rotate->add_option("id", id_, "The session id.")->required();
  CLI::App* find = app.add_subcommand("find", "Print every session of a principal.");
  find->add_option("--principal", principal_, "The user whose sessions to list.")->required();
  CLI::App* watch = app.add_subcommand(
      "watch", "Print session events as they happen, until Ctrl-C (or --count events).");
  watch->add_option("ids", ids_, "Session ids to watch (none: every session).");
  watch->add_option("--count", count_, "Stop after this many events (0: never).");
  app.add_subcommand("stats", "Print the daemon's node id, mode, sessions and counters.");
  app.add_subcommand("cluster", "Print the membership view from the admin endpoint (--admin).");
  app.add_subcommand("digest",
                     "Print the content digest of the sessions the node holds (from --admin); "
                     "replicas that converged print the same digest.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  principal_set_ = set_principal->count() > 0;
  const bool idle_set = set_idle->count() > 0;
  if (idle_set && idle_s_ == 0) return UsageError("--idle must be at least 1 second");

  const std::string command = app.get_subcommands().front()->get_name();
  SessionPrinter printer(std::cout, json_);
  if (command == "cluster") return RunCluster(printer);
  if (command == "digest") {
    return RunAdmin("/digest", [&](std::string_view body) { return printer.PrintDigest(body); });
  }

  for (const std::string& text : endpoints_) {
    if (Result<Endpoint> endpoint = Endpoint::Parse(text); !endpoint.ok()) {
      return UsageError("--endpoint: " + endpoint.status().message());
    }
  }
  Result<std::unique_ptr<Client>> client = Connect();
  if (!client.ok()) return Fail(client.status());
  return RunClientCommand(command, **client, printer);
}

Result<std::unique_ptr<Client>> Sessionctl::Connect() const {
  ClientOptions options;
  for (const std::string& text : endpoints_) options.endpoints.push_back(*Endpoint::Parse(text));
  options.connect_timeout = std::chrono::milliseconds(timeout_ms_);
  options.default_deadline = std::chrono::milliseconds(timeout_ms_);
  return Client::Connect(std::move(options));
}

int Sessionctl::RunClientCommand(const std::string& command, Client& client,
                                 SessionPrinter& printer) {
  if (command == "ping") {
    const auto start = std::chrono::steady_clock::now();
    if (Status status = client.Ping(); !status.ok()) return Fail(status);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    char text[64];
    std::snprintf(text, sizeof(text), "%.3f", ms);
    printer.PrintDone(std::string("pong in ") + text + " ms",
                      std::string("{\"ok\":true,\"rtt_ms\":") + text + "}");
    return 0;
  }
  if (command == "create") {
    v1::CreateRequest request;
    request.set_max_idle_s(idle_s_);
    request.set_max_lifetime_s(lifetime_s_);
    request.set_principal(principal_);
    for (const std::string& assignment : assignments_) {
      std::string name, value;
      if (!SplitAssignment(assignment, &name, &value)) {
        return UsageError("--attr '" + assignment + "' is not name=value");
      }
      (*request.mutable_attributes())[name] = value;
    }
    Result<v1::Session> session = client.Create(request);
    if (!session.ok()) return Fail(session.status());
    printer.PrintSession(*session);
    return 0;
  }
  if (command == "get") {
    Result<v1::Session> session = client.Get(id_, touch_);
    if (!session.ok()) return Fail(session.status());
    printer.PrintSession(*session);
    return 0;
  }
  if (command == "set" || command == "rm" || command == "touch") {
    v1::UpdateRequest request;
    request.set_id(id_);
    request.set_expected_version(expect_version_);
    if (command == "set") {
      if (assignments_.empty() && !principal_set_ && idle_s_ == 0) {
        return UsageError("set needs at least one name=value (or --principal, --idle)");
      }
      for (const std::string& assignment : assignments_) {
        std::string name, value;
        if (!SplitAssignment(assignment, &name, &value)) {
          return UsageError("'" + assignment + "' is not name=value");
        }
        (*request.mutable_set())[name] = value;
      }
      if (principal_set_) request.set_principal(principal_);
      if (idle_s_ != 0) request.set_max_idle_s(idle_s_);
    } else if (command == "rm") {
      for (const std::string& name : names_) request.add_remove(name);
    } else {
      request.set_touch(true);
    }
    Result<v1::Session> session = client.Update(request);
    if (!session.ok()) return Fail(session.status());
    if (command == "touch") {
      printer.PrintDone("touched " + id_ + " (version " + std::to_string(session->version()) + ")",
                        "{\"ok\":true,\"version\":" + std::to_string(session->version()) + "}");
    } else {
      printer.PrintSession(*session);
    }
    return 0;
  }
  if (command == "invalidate") {
    if (Status status = client.Invalidate(id_); !status.ok()) return Fail(status);
    printer.PrintDone("invalidated " + id_, "{\"ok\":true}");
    return 0;
  }
  if (command == "rotate") {
    Result<v1::Session> session = client.RotateId(id_);
    if (!session.ok()) return Fail(session.status());
    printer.PrintSession(*session);
    return 0;
  }
  if (command == "find") {
    Result<std::vector<v1::Session>> sessions = client.FindByPrincipal(principal_);
    if (!sessions.ok()) return Fail(sessions.status());
    printer.PrintSessions(*sessions);
    return 0;
  }
  if (command == "watch") return RunWatch(client, printer);
  if (command == "stats") {
    Result<v1::NodeStats> stats = client.Stats();
    if (!stats.ok()) return Fail(stats.status());
    printer.PrintStats(*stats);
    return 0;
  }
  return UsageError("unknown command " + command);
}

int Sessionctl::RunWatch(Client& client, SessionPrinter& printer) {
  Result<std::unique_ptr<WatchStream>> stream = client.Watch(ids_);
  if (!stream.ok()) return Fail(stream.status());
  if (!json_) {
    std::cerr << "watching "
              << (ids_.empty() ? std::string("every session")
                               : std::to_string(ids_.size()) + " session(s)")
              << "; Ctrl-C stops\n";
  }
  for (uint64_t seen = 0; count_ == 0 || seen < count_;) {
    const auto start = std::chrono::steady_clock::now();
    Result<v1::SessionEvent> event = (*stream)->Next(kWatchWait);
    if (event.ok()) {
      printer.PrintEvent(*event);
      ++seen;
      continue;
    }
    // Next also returns when the wait passes with no event; the watch is still open then.
    if (std::chrono::steady_clock::now() - start >= kWatchWait) continue;
    return Fail(event.status());
  }
  return 0;
}

int Sessionctl::RunCluster(SessionPrinter& printer) const {
  return RunAdmin("/cluster", [&](std::string_view body) { return printer.PrintCluster(body); });
}

int Sessionctl::RunAdmin(const char* path,
                         const std::function<Status(std::string_view)>& print) const {
  Result<Endpoint> admin = Endpoint::Parse(admin_);
  if (!admin.ok() || admin->kind != Endpoint::Kind::kTcp) {
    return UsageError("--admin '" + admin_ + "' is not HOST:PORT");
  }
  AdminHttpClient http(*admin, std::chrono::milliseconds(timeout_ms_));
  Result<std::string> body = http.Get(path);
  if (!body.ok()) return Fail(body.status());
  if (Status status = print(*body); !status.ok()) return Fail(status);
  return 0;
}

}  // namespace sessiond::sessionctl
