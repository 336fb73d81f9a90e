// Delta mode end to end: real sessiond processes in `--mode delta` on loopback, linked to each
// other through --peers, driven through the public client library as app servers on several
// nodes would, and checked from outside through the admin endpoint (/cluster, /digest,
// /readyz, /metrics) the way an operator would.
//
// Tests named *Fault* kill nodes with SIGKILL or cut links through a user-space TCP proxy; they
// carry the ctest label `fault`.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "sessiond/asio.h"
#include "sessiond/client.h"
#include "tests/support/daemon_process.h"
#include "tools/bench/delay_proxy.h"
#include "tools/bench/free_port.h"

namespace sessiond::test {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

// Polls `done` every 20 ms until it holds or `limit` passes.
bool Eventually(const std::function<bool()>& done, milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// How many members the node's /cluster shows in `state` (itself included when alive).
int MembersIn(const DaemonProcess& node, const std::string& state) {
  Result<HttpReply> reply = node.HttpGet("/cluster");
  if (!reply.ok() || reply->status != 200) return -1;
  // The members array comes before the embedded cluster view; count within it only.
  const std::string& body = reply->body;
  const size_t begin = body.find("\"members\":[");
  const size_t end = body.find("],\"cluster\":", begin);
  if (begin == std::string::npos) return -1;
  const std::string members = body.substr(begin, end == std::string::npos ? end : end - begin);
  const std::string needle = "\"state\":\"" + state + "\"";
  int count = 0;
  for (size_t at = members.find(needle); at != std::string::npos;
       at = members.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

// The node's content digest and session count from /digest, as "digest/sessions".
std::string DigestOf(const DaemonProcess& node) {
  Result<HttpReply> reply = node.HttpGet("/digest");
  if (!reply.ok() || reply->status != 200) return "unreachable";
  static const std::regex kDigest(R"re("sessions":(\d+),"digest":"([0-9a-f]+)")re");
  std::smatch m;
  if (!std::regex_search(reply->body, m, kDigest)) return "malformed: " + reply->body;
  return m[2].str() + "/" + m[1].str();
}

bool Ready(const DaemonProcess& node) {
  Result<HttpReply> reply = node.HttpGet("/readyz", 2s);
  return reply.ok() && reply->status == 200;
}

// The value of the first sample of `family` whose labels contain `label`, or -1.
double MetricValue(const DaemonProcess& node, const std::string& family, const std::string& label) {
  Result<HttpReply> reply = node.HttpGet("/metrics");
  if (!reply.ok()) return -1;
  size_t at = 0;
  const std::string& body = reply->body;
  while ((at = body.find("\n" + family, at)) != std::string::npos) {
    const size_t line_end = body.find('\n', at + 1);
    const std::string line = body.substr(at + 1, line_end - at - 1);
    at = line_end;
    if (line.compare(0, family.size(), family) != 0) continue;
    const char next = line.size() > family.size() ? line[family.size()] : ' ';
    if (next != '{' && next != ' ') continue;
    if (!label.empty() && line.find(label) == std::string::npos) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

v1::CreateRequest NewSession(const std::map<std::string, std::string>& attributes = {}) {
  v1::CreateRequest request;
  for (const auto& [name, value] : attributes) (*request.mutable_attributes())[name] = value;
  return request;
}

v1::UpdateRequest SetAttribute(const std::string& id, const std::string& name,
                               const std::string& value) {
  v1::UpdateRequest request;
  request.set_id(id);
  (*request.mutable_set())[name] = value;
  return request;
}

class DeltaCluster : public ::testing::Test {
 protected:
  // Starts node `name` in delta mode, with `extra` flags (e.g. --peers), and waits for its
  // port file.
  DaemonProcess& StartNode(const std::string& name, std::vector<std::string> extra = {}) {
    auto node = std::make_unique<DaemonProcess>(name);
    std::vector<std::string> args = {"--mode",      "delta", "--node-id",      name,
                                     "--log-level", "info",  "--cluster-name", "delta-test"};
    args.insert(args.end(), extra.begin(), extra.end());
    EXPECT_TRUE(node->Start(args));
    nodes_.push_back(std::move(node));
    return *nodes_.back();
  }

  // n1, then n2..nN seeded with n1, all seeing each other alive and ready.
  void StartCluster(int count, std::vector<std::string> extra = {}) {
    DaemonProcess& first = StartNode("n1", extra);
    for (int i = 2; i <= count; ++i) {
      std::vector<std::string> args = extra;
      args.insert(args.end(), {"--peers", first.peer_text()});
      StartNode("n" + std::to_string(i), args);
    }
    for (auto& node : nodes_) {
      ASSERT_TRUE(Eventually([&] { return MembersIn(*node, "alive") == count; }))
          << node->LogTail();
      ASSERT_TRUE(Eventually([&] { return Ready(*node); })) << node->LogTail();
    }
  }

  std::unique_ptr<Client> ClientOf(const DaemonProcess& node) {
    Result<std::unique_ptr<Client>> client = node.Connect();
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(client).value() : nullptr;
  }

  // Every running node reports the same digest.
  bool Converged() {
    std::optional<std::string> first;
    for (auto& node : nodes_) {
      if (!node->running()) continue;
      const std::string digest = DigestOf(*node);
      if (!first) first = digest;
      if (digest != *first || digest.find('/') == std::string::npos) return false;
    }
    return true;
  }

  std::string Digests() {
    std::string out;
    for (auto& node : nodes_) {
      if (node->running()) out += "\n  " + node->dir() + ": " + DigestOf(*node);
    }
    return out;
  }

  DaemonProcess& node(int i) { return *nodes_.at(i); }

  std::vector<std::unique_ptr<DaemonProcess>> nodes_;
};

TEST_F(DeltaCluster, ASessionCreatedOnOneNodeIsReadableAndChangeableOnEveryNode) {
  StartCluster(3);
  auto c1 = ClientOf(node(0));
  auto c2 = ClientOf(node(1));
  auto c3 = ClientOf(node(2));
  ASSERT_TRUE(c1 && c2 && c3);

  Result<v1::Session> created = c1->Create(NewSession({{"cart", "3 items"}}));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const std::string id = created->id();
  for (Client* c : {c2.get(), c3.get()}) {
    ASSERT_TRUE(Eventually([&] {
      Result<v1::Session> s = c->Get(id);
      return s.ok() && s->attributes().at("cart") == "3 items";
    })) << "the session never appeared on another node";
  }

  ASSERT_TRUE(c2->Update(SetAttribute(id, "cart", "4 items")).ok());
  ASSERT_TRUE(Eventually([&] {
    Result<v1::Session> s = c3->Get(id);
    return s.ok() && s->attributes().at("cart") == "4 items";
  }));

  Result<v1::Session> rotated = c3->RotateId(id);
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  ASSERT_TRUE(Eventually([&] { return c1->Get(rotated->id()).ok() && !c1->Get(id).ok(); }));
  EXPECT_EQ(c1->Get(id).status().code(), v1::NOT_FOUND);

  ASSERT_TRUE(c1->Invalidate(rotated->id()).ok());
  for (Client* c : {c2.get(), c3.get()}) {
    ASSERT_TRUE(Eventually([&] { return c->Get(rotated->id()).status().code() == v1::NOT_FOUND; }));
  }
  EXPECT_TRUE(Eventually([&] { return Converged(); })) << Digests();
}

TEST_F(DeltaCluster, AWatcherOnOneNodeSeesChangesMadeOnAnother) {
  StartCluster(2);
  auto c1 = ClientOf(node(0));
  auto c2 = ClientOf(node(1));
  ASSERT_TRUE(c1 && c2);
  Result<std::unique_ptr<WatchStream>> watch = c2->Watch({});
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();

  Result<v1::Session> created = c1->Create(NewSession());
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(c1->Update(SetAttribute(created->id(), "a", "1")).ok());
  std::vector<v1::SessionEvent::Kind> kinds;
  while (kinds.size() < 2) {
    Result<v1::SessionEvent> event = (*watch)->Next(5s);
    ASSERT_TRUE(event.ok()) << event.status().ToString();
    if (event->id() != created->id()) continue;
    EXPECT_EQ(event->origin_node(), "n1");
    kinds.push_back(event->kind());
  }
  EXPECT_EQ(kinds[0], v1::SessionEvent::CREATED);
  EXPECT_EQ(kinds[1], v1::SessionEvent::CHANGED);
}

TEST_F(DeltaCluster, ConcurrentConflictingUpdatesOnDifferentNodesEndIdenticalEverywhere) {
  StartCluster(3);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(ClientOf(node(i)));
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    Result<v1::Session> s = clients[0]->Create(NewSession({{"x", "initial"}}));
    ASSERT_TRUE(s.ok());
    ids.push_back(s->id());
  }
  for (const std::string& id : ids) {
    ASSERT_TRUE(Eventually([&] { return clients[2]->Get(id).ok(); }));
  }
  // Three writers, one per node, write the same attributes of the same sessions at once.
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      for (int round = 0; round < 30; ++round) {
        for (const std::string& id : ids) {
          v1::UpdateRequest request =
              SetAttribute(id, "x", "n" + std::to_string(w + 1) + "-" + std::to_string(round));
          (*request.mutable_set())["y" + std::to_string(round % 3)] = std::to_string(w);
          if (round % 7 == w) request.add_remove("y" + std::to_string((round + 1) % 3));
          if (!clients[w]->Update(request).ok()) ++failures;
        }
      }
    });
  }
  for (std::thread& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(Eventually([&] { return Converged(); })) << Digests();
  for (const std::string& id : ids) {
    Result<v1::Session> a = clients[0]->Get(id);
    ASSERT_TRUE(a.ok());
    for (int i = 1; i < 3; ++i) {
      Result<v1::Session> b = clients[i]->Get(id);
      ASSERT_TRUE(b.ok());
      using Attributes = std::map<std::string, std::string>;
      EXPECT_EQ(Attributes(a->attributes().begin(), a->attributes().end()),
                Attributes(b->attributes().begin(), b->attributes().end()))
          << "session " << id << " differs between n1 and n" << i + 1;
    }
  }
}

TEST_F(DeltaCluster, AFourthNodeReceivesEverySessionByStateTransferBeforeItIsReady) {
  StartCluster(3);
  constexpr int kSessions = 100'000;
  constexpr int kThreads = 8;
  auto c1 = ClientOf(node(0));
  std::atomic<int> failures{0};
  std::vector<std::thread> creators;
  for (int t = 0; t < kThreads; ++t) {
    creators.emplace_back([&, t] {
      for (int i = t; i < kSessions; i += kThreads) {
        if (!c1->Create(NewSession({{"user", "u" + std::to_string(i)}})).ok()) ++failures;
      }
    });
  }
  for (std::thread& t : creators) t.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(Eventually([&] { return Converged(); }, 60s)) << Digests();

  DaemonProcess& late = StartNode("n4", {"--peers", node(1).peer_text()});
  ASSERT_TRUE(Eventually([&] { return Ready(late); }, 60s)) << late.LogTail();
  // Ready means caught up: the digest must match at once, not eventually.
  const std::string expected = DigestOf(node(0));
  EXPECT_EQ(DigestOf(late), expected);
  EXPECT_NE(expected.find("/100000"), std::string::npos) << expected;
  EXPECT_GE(MetricValue(late, "sessiond_state_transfer_sessions_received_total", ""), kSessions);
}

TEST_F(DeltaCluster, APeerWithTheWrongSecretIsRefused) {
  const std::string dir = ::testing::TempDir();
  const std::string good = dir + "/delta-good.secret";
  const std::string bad = dir + "/delta-bad.secret";
  ASSERT_EQ(std::system(("printf 'correct horse battery staple' > " + good).c_str()), 0);
  ASSERT_EQ(std::system(("printf 'wrong horse battery staple!!' > " + bad).c_str()), 0);
  DaemonProcess& n1 = StartNode("n1", {"--cluster-secret-file", good});
  DaemonProcess& n2 = StartNode("n2", {"--cluster-secret-file", good, "--peers", n1.peer_text()});
  DaemonProcess& intruder =
      StartNode("n3", {"--cluster-secret-file", bad, "--peers", n1.peer_text()});
  ASSERT_TRUE(Eventually([&] { return MembersIn(n1, "alive") == 2; }));
  ASSERT_TRUE(Eventually([&] {
    return MetricValue(n1, "sessiond_peer_handshake_refusals_total", "secret_mismatch") > 0 ||
           MetricValue(intruder, "sessiond_peer_handshake_refusals_total", "secret_mismatch") > 0;
  })) << n1.LogTail();
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(MembersIn(n1, "alive"), 2) << "the intruder joined";
  EXPECT_EQ(MembersIn(intruder, "alive"), 1) << "the intruder sees members";
  // The cluster keeps replicating between the nodes that share the secret.
  auto c1 = ClientOf(n1);
  auto c2 = ClientOf(n2);
  Result<v1::Session> s = c1->Create(NewSession());
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(Eventually([&] { return c2->Get(s->id()).ok(); }));
  auto c3 = ClientOf(intruder);
  EXPECT_EQ(c3->Get(s->id()).status().code(), v1::NOT_FOUND);
}

// --- Faults ---------------------------------------------------------------------------------

// What writers were told. Each (session, attribute) has one writer, so once the writes stop a
// replica must show the last value acknowledged for it, or the value of a later write whose
// answer failed (it may have been applied and replicated before the answer was lost): anything
// else is an acknowledged write lost.
struct AckedWrites {
  struct Key {
    std::string last_acked;
    std::vector<std::string> failed_after;  // attempts after it whose outcome is unknown
  };
  std::mutex mu;
  std::map<std::pair<std::string, std::string>, Key> keys;
  std::atomic<int> acked{0};
  std::atomic<int> failed{0};

  void Record(const std::string& id, const std::string& attribute, const std::string& value,
              bool ok) {
    std::lock_guard lock(mu);
    Key& key = keys[{id, attribute}];
    if (ok) {
      key.last_acked = value;
      key.failed_after.clear();
      ++acked;
    } else {
      key.failed_after.push_back(value);
      ++failed;
    }
  }
};

TEST_F(DeltaCluster, FaultKillNineDuringSyncWritesLosesNoAcknowledgedWrite) {
  StartCluster(3, {"--replication-ack", "sync"});
  auto c1 = ClientOf(node(0));
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    Result<v1::Session> s = c1->Create(NewSession());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ids.push_back(s->id());
  }

  // Writers on n1 and n2 (each its own attribute), while n1 is killed with SIGKILL.
  AckedWrites acked;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      std::unique_ptr<Client> client = ClientOf(node(w));
      const std::string attribute = "w" + std::to_string(w);
      for (int seq = 0; !stop; ++seq) {
        const std::string& id = ids[seq % ids.size()];
        const std::string value = std::to_string(seq);
        const bool ok = client->Update(SetAttribute(id, attribute, value), 2s).ok();
        acked.Record(id, attribute, value, ok);
        if (!ok && w == 0) return;  // n1 is gone
      }
    });
  }
  ASSERT_TRUE(Eventually([&] { return acked.acked > 300; }, 20s));
  node(0).Kill9();
  std::this_thread::sleep_for(500ms);
  stop = true;
  for (std::thread& t : writers) t.join();
  ASSERT_GT(acked.acked.load(), 300);

  // Every acknowledged write is on both survivors.
  for (int survivor : {1, 2}) {
    std::unique_ptr<Client> client = ClientOf(node(survivor));
    int lost = 0;
    for (const auto& [key, writes] : acked.keys) {
      if (writes.last_acked.empty()) continue;  // nothing acknowledged
      Result<v1::Session> s = client->Get(key.first);
      ASSERT_TRUE(s.ok()) << "session lost on n" << survivor + 1 << ": " << s.status().ToString();
      auto it = s->attributes().find(key.second);
      const std::string seen = it == s->attributes().end() ? "(missing)" : it->second;
      if (seen == writes.last_acked) continue;
      if (std::find(writes.failed_after.begin(), writes.failed_after.end(), seen) !=
          writes.failed_after.end()) {
        continue;
      }
      ++lost;
      ADD_FAILURE() << "n" << survivor + 1 << " shows " << key.second << "=" << seen << " but "
                    << writes.last_acked << " was acknowledged";
    }
    EXPECT_EQ(lost, 0) << "acknowledged writes lost on n" << survivor + 1;
  }

  // The killed node restarts, receives the state again and converges with the others.
  ASSERT_TRUE(node(0).Start({"--mode", "delta", "--node-id", "n1", "--cluster-name", "delta-test",
                             "--replication-ack", "sync", "--peers", node(1).peer_text()}));
  ASSERT_TRUE(Eventually([&] { return Ready(node(0)); }, 30s)) << node(0).LogTail();
  EXPECT_TRUE(Eventually([&] { return Converged(); }, 20s)) << Digests();
}

TEST_F(DeltaCluster, FaultACutLinkHealsAndTheNodesConverge) {
  // Each node advertises a proxy in front of its own peer port, so every link between the two
  // runs through a proxy and a cut holds whichever side redials.
  asio::io_context proxy_io;
  auto guard = asio::make_work_guard(proxy_io);
  std::thread proxy_thread([&] { proxy_io.run(); });
  Result<std::vector<uint16_t>> ports = bench::PickFreePorts(2);
  ASSERT_TRUE(ports.ok());
  std::vector<std::unique_ptr<bench::DelayProxy>> proxies;
  for (uint16_t port : *ports) {
    bench::DelayProxyOptions options;
    options.target = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
    Result<std::unique_ptr<bench::DelayProxy>> proxy = bench::DelayProxy::Create(proxy_io, options);
    ASSERT_TRUE(proxy.ok()) << proxy.status().ToString();
    proxies.push_back(std::move(proxy).value());
  }
  auto address = [](uint16_t port) { return "127.0.0.1:" + std::to_string(port); };
  DaemonProcess& n1 = StartNode("n1", {"--peer-listen", address((*ports)[0]), "--peer-advertise",
                                       address(proxies[0]->port())});
  DaemonProcess& n2 =
      StartNode("n2", {"--peer-listen", address((*ports)[1]), "--peer-advertise",
                       address(proxies[1]->port()), "--peers", address(proxies[0]->port())});
  ASSERT_TRUE(Eventually([&] { return MembersIn(n1, "alive") == 2 && Ready(n2); })) << n1.LogTail();

  auto c1 = ClientOf(n1);
  auto c2 = ClientOf(n2);
  Result<v1::Session> shared = c1->Create(NewSession({{"a", "before"}}));
  ASSERT_TRUE(shared.ok());
  ASSERT_TRUE(Eventually([&] { return c2->Get(shared->id()).ok(); }));

  // Cut well within the failure detector's patience, change both sides, restore.
  for (auto& proxy : proxies) proxy->Cut();
  ASSERT_TRUE(c1->Update(SetAttribute(shared->id(), "a", "during-cut-n1")).ok());
  ASSERT_TRUE(c2->Update(SetAttribute(shared->id(), "b", "during-cut-n2")).ok());
  std::vector<std::string> made_during_cut;
  for (int i = 0; i < 50; ++i) {
    Result<v1::Session> s = (i % 2 ? c2 : c1)->Create(NewSession({{"i", std::to_string(i)}}));
    ASSERT_TRUE(s.ok());
    made_during_cut.push_back(s->id());
  }
  std::this_thread::sleep_for(300ms);
  for (auto& proxy : proxies) proxy->Restore();

  ASSERT_TRUE(Eventually([&] { return Converged(); }, 30s)) << Digests();
  for (Client* c : {c1.get(), c2.get()}) {
    Result<v1::Session> s = c->Get(shared->id());
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->attributes().at("a"), "during-cut-n1");
    EXPECT_EQ(s->attributes().at("b"), "during-cut-n2");
    for (const std::string& id : made_during_cut) EXPECT_TRUE(c->Get(id).ok());
  }

  proxies.clear();
  guard.reset();
  proxy_io.stop();
  proxy_thread.join();
}

}  // namespace
}  // namespace sessiond::test
