// Backup mode end to end: real sessiond processes in `--mode backup` on loopback, linked through
// --peers, driven through the public client library, and checked from outside through /metrics
// (sessiond_sessions_{primary,backup,under_replicated}) the way an operator would.
//
// Tests named *Fault* kill nodes with SIGKILL or stop them with SIGTERM; they carry the ctest
// label `fault`.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sessiond/client.h"
#include "tests/support/daemon_process.h"

namespace sessiond::test {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

bool Eventually(const std::function<bool()>& done, milliseconds limit = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

bool Ready(const DaemonProcess& node) {
  Result<HttpReply> reply = node.HttpGet("/readyz", 2s);
  return reply.ok() && reply->status == 200;
}

// The value of the unlabelled sample of `family` on the node's /metrics, or -1.
double Metric(const DaemonProcess& node, const std::string& family) {
  Result<HttpReply> reply = node.HttpGet("/metrics");
  if (!reply.ok()) return -1;
  const std::string needle = "\n" + family + " ";
  const size_t at = reply->body.find(needle);
  if (at == std::string::npos) return -1;
  const size_t end = reply->body.find('\n', at + 1);
  return std::stod(reply->body.substr(at + needle.size(), end - at - needle.size()));
}

v1::UpdateRequest SetAttribute(const std::string& id, const std::string& name,
                               const std::string& value) {
  v1::UpdateRequest request;
  request.set_id(id);
  (*request.mutable_set())[name] = value;
  return request;
}

class BackupCluster : public ::testing::Test {
 protected:
  std::vector<std::string> Args(const std::string& name, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"--mode",
                                     "backup",
                                     "--node-id",
                                     name,
                                     "--log-level",
                                     "info",
                                     "--cluster-name",
                                     "backup-test",
                                     "--peer-dead-after-ms",
                                     "900"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  DaemonProcess& StartNode(const std::string& name, const std::vector<std::string>& extra) {
    auto node = std::make_unique<DaemonProcess>(name);
    EXPECT_TRUE(node->Start(Args(name, extra)));
    nodes_.push_back(std::move(node));
    return *nodes_.back();
  }

  // n1, then n2..nN seeded with n1, all ready (linked, placements exchanged).
  void StartCluster(int count, std::vector<std::string> extra = {}) {
    extra_ = extra;
    DaemonProcess& first = StartNode("n1", extra);
    for (int i = 2; i <= count; ++i) {
      std::vector<std::string> args = extra;
      args.insert(args.end(), {"--peers", first.peer_text()});
      StartNode("n" + std::to_string(i), args);
    }
    for (auto& node : nodes_) {
      ASSERT_TRUE(Eventually([&] { return Ready(*node); })) << node->LogTail();
    }
    // Every node has met every other (readiness waits for each live peer's placements).
    ASSERT_TRUE(Eventually([&] {
      for (auto& node : nodes_) {
        if (Metric(*node, "sessiond_sessions_primary") < 0 || !Ready(*node)) return false;
      }
      return true;
    }));
  }

  std::unique_ptr<Client> ClientOf(const DaemonProcess& node) {
    Result<std::unique_ptr<Client>> client = node.Connect();
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(client).value() : nullptr;
  }

  // Over the running nodes: every session held once as primary and `k` times as backup, and
  // nothing under-replicated.
  bool Redundant(size_t sessions, int k) {
    double primary = 0;
    double backup = 0;
    for (auto& node : nodes_) {
      if (!node->running()) continue;
      const double p = Metric(*node, "sessiond_sessions_primary");
      const double b = Metric(*node, "sessiond_sessions_backup");
      const double u = Metric(*node, "sessiond_sessions_under_replicated");
      if (p < 0 || b < 0 || u != 0) return false;
      primary += p;
      backup += b;
    }
    return primary == sessions && backup == sessions * k;
  }

  std::string Gauges() {
    std::string out;
    for (auto& node : nodes_) {
      if (!node->running()) continue;
      out += "\n  " + node->dir() +
             ": primary=" + std::to_string(Metric(*node, "sessiond_sessions_primary")) +
             " backup=" + std::to_string(Metric(*node, "sessiond_sessions_backup")) +
             " under=" + std::to_string(Metric(*node, "sessiond_sessions_under_replicated"));
    }
    return out;
  }

  DaemonProcess& node(int i) { return *nodes_.at(i); }

  // Writes "seq" = 1, 2, 3... to every session in turn through `client` until `stop`, recording
  // per session the last value answered OK.
  void WriteLoad(Client* client, const std::vector<std::string>& ids, std::atomic<bool>* stop,
                 std::map<std::string, int>* acked, std::mutex* mu) {
    for (int seq = 1; !stop->load(); ++seq) {
      for (const std::string& id : ids) {
        if (stop->load()) return;
        Result<v1::Session> r = client->Update(SetAttribute(id, "seq", std::to_string(seq)));
        if (r.ok()) {
          std::lock_guard<std::mutex> lock(*mu);
          (*acked)[id] = seq;
        }
      }
    }
  }

  // Every session is readable through `client` with at least the value last acknowledged.
  void ExpectNoAcknowledgedWriteLost(Client* client, const std::map<std::string, int>& acked,
                                     const std::vector<std::string>& ids) {
    for (const std::string& id : ids) {
      Result<v1::Session> s = client->Get(id);
      ASSERT_TRUE(s.ok()) << "session lost: " << s.status().ToString();
      auto it = acked.find(id);
      if (it == acked.end()) continue;
      auto seq = s->attributes().find("seq");
      ASSERT_NE(seq, s->attributes().end());
      EXPECT_GE(std::stoi(seq->second), it->second) << "an acknowledged write was lost";
    }
  }

  std::vector<std::string> extra_;
  std::vector<std::unique_ptr<DaemonProcess>> nodes_;
};

TEST_F(BackupCluster, CreatedOnOneNodeReadOnAnotherMovesOwnership) {
  StartCluster(3, {"--backup-move-after", "0"});  // the first access moves the session
  auto c1 = ClientOf(node(0));
  auto c3 = ClientOf(node(2));
  ASSERT_TRUE(c1 && c3);
  v1::CreateRequest request;
  (*request.mutable_attributes())["cart"] = "3 items";
  Result<v1::Session> created = c1->Create(request);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(Metric(node(0), "sessiond_sessions_primary"), 1);
  Result<v1::Session> got = c3->Get(created->id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->attributes().at("cart"), "3 items");
  EXPECT_EQ(Metric(node(2), "sessiond_sessions_primary"), 1);
  EXPECT_EQ(Metric(node(0), "sessiond_sessions_primary"), 0);
  EXPECT_TRUE(Eventually([&] { return Redundant(1, 1); })) << Gauges();
}

TEST_F(BackupCluster, TheSecondAccessInARowFromANodeMovesTheSession) {
  StartCluster(3);  // --backup-move-after 1
  auto c1 = ClientOf(node(0));
  auto c3 = ClientOf(node(2));
  ASSERT_TRUE(c1 && c3);
  Result<v1::Session> created = c1->Create(v1::CreateRequest());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  Result<v1::Session> updated = c3->Update(SetAttribute(created->id(), "k", "v"));
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(Metric(node(0), "sessiond_sessions_primary"), 1);
  EXPECT_EQ(Metric(node(2), "sessiond_backup_forwards_total"), 1);
  Result<v1::Session> got = c3->Get(created->id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->attributes().at("k"), "v");
  EXPECT_EQ(Metric(node(2), "sessiond_sessions_primary"), 1);
  EXPECT_EQ(Metric(node(0), "sessiond_sessions_primary"), 0);
  EXPECT_EQ(Metric(node(2), "sessiond_backup_moves_total"), 1);
  EXPECT_TRUE(Eventually([&] { return Redundant(1, 1); })) << Gauges();
}

TEST_F(BackupCluster, MoveOnAccessFalseForwardsToThePrimary) {
  StartCluster(3, {"--backup-move-on-access", "false"});
  auto c1 = ClientOf(node(0));
  auto c3 = ClientOf(node(2));
  ASSERT_TRUE(c1 && c3);
  Result<v1::Session> created = c1->Create(v1::CreateRequest());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  Result<v1::Session> updated = c3->Update(SetAttribute(created->id(), "k", "v"));
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->version(), 2u);
  EXPECT_EQ(Metric(node(0), "sessiond_sessions_primary"), 1);
  EXPECT_EQ(Metric(node(2), "sessiond_sessions_primary"), 0);
  EXPECT_GE(Metric(node(2), "sessiond_backup_forwards_total"), 1);
  Result<v1::Session> got = c1->Get(created->id());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->attributes().at("k"), "v");
}

TEST_F(BackupCluster, FaultKill9OfAPrimaryUnderSyncWritesLosesNoAcknowledgedWrite) {
  StartCluster(3);
  auto c1 = ClientOf(node(0));
  ASSERT_TRUE(c1);
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    Result<v1::Session> s = c1->Create(v1::CreateRequest());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ids.push_back(s->id());
  }
  std::atomic<bool> stop{false};
  std::map<std::string, int> acked;
  std::mutex mu;
  std::thread writer([&] { WriteLoad(c1.get(), ids, &stop, &acked, &mu); });
  std::this_thread::sleep_for(700ms);
  node(0).Kill9();
  stop = true;
  writer.join();
  ASSERT_FALSE(acked.empty());
  ASSERT_TRUE(Eventually([&] { return Redundant(ids.size(), 1); })) << Gauges();
  auto c2 = ClientOf(node(1));
  ASSERT_TRUE(c2);
  ExpectNoAcknowledgedWriteLost(c2.get(), acked, ids);

  // Redundancy is whole again: killing the node that now holds everything loses nothing either.
  ASSERT_TRUE(Eventually([&] { return Redundant(ids.size(), 1); })) << Gauges();
  node(1).Kill9();
  auto c3 = ClientOf(node(2));
  ASSERT_TRUE(c3);
  ASSERT_TRUE(Eventually([&] { return Metric(node(2), "sessiond_sessions_primary") == 40; }))
      << Gauges();
  ExpectNoAcknowledgedWriteLost(c3.get(), acked, ids);
}

TEST_F(BackupCluster, FaultTwoBackupsSurviveTwoSimultaneousKills) {
  StartCluster(4, {"--backups", "2"});
  auto c1 = ClientOf(node(0));
  auto c2 = ClientOf(node(1));
  ASSERT_TRUE(c1 && c2);
  std::vector<std::string> ids;
  std::map<std::string, int> acked;
  for (int i = 0; i < 30; ++i) {
    Client* c = i % 2 ? c1.get() : c2.get();
    Result<v1::Session> s = c->Create(v1::CreateRequest());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE(c->Update(SetAttribute(s->id(), "seq", "7")).ok());
    ids.push_back(s->id());
    acked[s->id()] = 7;
  }
  node(0).Kill9();
  node(1).Kill9();
  ASSERT_TRUE(Eventually([&] { return Redundant(ids.size(), 1); })) << Gauges();
  auto c4 = ClientOf(node(3));
  ASSERT_TRUE(c4);
  ExpectNoAcknowledgedWriteLost(c4.get(), acked, ids);
}

TEST_F(BackupCluster, FaultRollingRestartWithSigtermLosesNoSession) {
  StartCluster(3);
  std::vector<std::string> ids;
  {
    auto c = ClientOf(node(0));
    ASSERT_TRUE(c);
    for (int i = 0; i < 30; ++i) {
      Result<v1::Session> s = c->Create(v1::CreateRequest());
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      ids.push_back(s->id());
    }
  }
  std::map<std::string, int> acked;
  std::mutex mu;
  for (int restarting = 0; restarting < 3; ++restarting) {
    // Load through another node while this one stops and comes back.
    const int serving = (restarting + 1) % 3;
    auto client = ClientOf(node(serving));
    ASSERT_TRUE(client);
    std::atomic<bool> stop{false};
    std::thread writer([&] { WriteLoad(client.get(), ids, &stop, &acked, &mu); });
    std::this_thread::sleep_for(300ms);
    node(restarting).Terminate();
    ASSERT_EQ(node(restarting).WaitExit(15s), 0) << node(restarting).LogTail();
    std::vector<std::string> args = Args("n" + std::to_string(restarting + 1), extra_);
    args.insert(args.end(), {"--peers", node(serving).peer_text()});
    ASSERT_TRUE(node(restarting).Start(args));
    ASSERT_TRUE(Eventually([&] { return Ready(node(restarting)); })) << node(restarting).LogTail();
    std::this_thread::sleep_for(300ms);
    stop = true;
    writer.join();
    ASSERT_TRUE(Eventually([&] { return Redundant(ids.size(), 1); })) << Gauges();
  }
  auto c = ClientOf(node(0));
  ASSERT_TRUE(c);
  ExpectNoAcknowledgedWriteLost(c.get(), acked, ids);
}

}  // namespace
}  // namespace sessiond::test
