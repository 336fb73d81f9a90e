// A fixture for delta-mode tests that need nodes joining, dying and losing traffic: in-process
// nodes (a Cluster and a DeltaManager each) on one io_context on 127.0.0.1, port 0, with a
// ManualClock and explicit Tick() calls, plus Relays (test_cluster_support.h) in front of nodes'
// peer listeners to swallow or refuse traffic. Nothing sleeps; a test waits for a condition.
#ifndef SESSIOND_TESTS_UNIT_DELTA_TEST_CLUSTER_H_
#define SESSIOND_TESTS_UNIT_DELTA_TEST_CLUSTER_H_

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "replication/clock.h"
#include "replication/cluster/cluster.h"
#include "replication/delta/delta_manager.h"
#include "replication/session_id.h"
#include "sessiond/asio.h"
#include "tests/unit/test_cluster_support.h"

namespace sessiond::testing {

using namespace std::chrono_literals;

class DeltaClusterTest : public ::testing::Test {
 protected:
  struct Node {
    std::unique_ptr<Cluster> cluster;
    std::unique_ptr<DeltaManager> manager;
    DeltaManager* operator->() { return manager.get(); }
  };

  DeltaClusterTest() {
    // Tests run anti-entropy themselves, so a round never starts at a moment they did not pick.
    delta_options_.anti_entropy_interval = 0ms;
  }

  ~DeltaClusterTest() override {
    for (auto& [id, node] : nodes_) {
      node->manager.reset();
      node->cluster->Stop();
    }
    relays_.clear();
    // Let the posted work of the stopped nodes run while everything it may touch is alive.
    io_.poll();
  }

  // Starts node `id` with `delta` options, dialing `seeds`. With a relay, the node tells its
  // peers to dial it through the relay.
  Node& Start(const std::string& id, std::vector<Endpoint> seeds, DeltaOptions delta,
              Relay* relay = nullptr) {
    auto node = std::make_unique<Node>();
    node->cluster = std::make_unique<Cluster>(
        io_.get_executor(), TestClusterOptions(id, std::move(seeds), relay, &clock_));
    ManagerOptions manager_options;
    manager_options.node_id = id;
    manager_options.clock = &clock_;
    manager_options.ids = &ids_;
    node->manager = std::make_unique<DeltaManager>(io_.get_executor(), manager_options,
                                                   node->cluster.get(), delta);
    const Status cluster_started = node->cluster->Start();
    EXPECT_TRUE(cluster_started.ok()) << cluster_started.ToString();
    if (relay != nullptr) relay->set_target(node->cluster->listen_endpoint().port);
    const Status started = Run(node->manager->Start());
    EXPECT_TRUE(started.ok()) << started.ToString();
    Node* raw = node.get();
    nodes_[id] = std::move(node);
    return *raw;
  }

  Endpoint EndpointOf(const std::string& id) { return nodes_.at(id)->cluster->listen_endpoint(); }

  Relay& AddRelay() {
    relays_.push_back(std::make_unique<Relay>(io_));
    return *relays_.back();
  }

  DeltaManager& M(const std::string& id) { return *nodes_.at(id)->manager; }

  uint64_t Counter(const std::string& id, const std::string& name) {
    const v1::NodeStats stats = M(id).Stats();
    auto it = stats.counters().find(name);
    return it == stats.counters().end() ? 0 : it->second;
  }

  template <typename T>
  T Run(asio::awaitable<T> op) {
    std::optional<T> result;
    Spawn(std::move(op), &result);
    EXPECT_TRUE(RunUntil(io_, [&] { return result.has_value(); }));
    return std::move(*result);
  }

  // Starts `op`; the result lands in *out when it completes.
  template <typename T>
  void Spawn(asio::awaitable<T> op, std::optional<T>* out) {
    asio::co_spawn(
        io_,
        [](asio::awaitable<T> op, std::optional<T>* out) -> asio::awaitable<void> {
          out->emplace(co_await std::move(op));
        }(std::move(op), out),
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
  }

  // Session attributes of about 1 KiB: 8 values of 120 bytes, distinct per session.
  static std::map<std::string, std::string> Attributes(int n) {
    std::map<std::string, std::string> attributes;
    for (int i = 0; i < 8; ++i) {
      std::string value = "attribute " + std::to_string(i) + " of session " + std::to_string(n);
      value.resize(120, static_cast<char>('a' + (n + i) % 26));
      attributes["attr" + std::to_string(i)] = std::move(value);
    }
    return attributes;
  }

  v1::Session Create(const std::string& node, const std::map<std::string, std::string>& attrs) {
    v1::CreateRequest request;
    request.set_max_idle_s(3600);
    for (const auto& [name, value] : attrs) (*request.mutable_attributes())[name] = value;
    Result<v1::Session> created = Run(M(node).Create(request));
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? *created : v1::Session();
  }

  // Creates `count` sessions on `node`, many per loop turn (as a busy node would).
  std::vector<std::string> CreateMany(const std::string& node, int count) {
    std::vector<std::string> ids;
    constexpr int kPerTurn = 500;
    for (int first = 0; first < count; first += kPerTurn) {
      std::vector<std::optional<Result<v1::Session>>> results(std::min(kPerTurn, count - first));
      for (size_t i = 0; i < results.size(); ++i) {
        v1::CreateRequest request;
        request.set_max_idle_s(3600);
        for (const auto& [name, value] : Attributes(first + static_cast<int>(i))) {
          (*request.mutable_attributes())[name] = value;
        }
        Spawn(M(node).Create(request), &results[i]);
      }
      EXPECT_TRUE(RunUntil(io_, [&] {
        for (const auto& r : results) {
          if (!r) return false;
        }
        return true;
      }));
      for (const auto& r : results) {
        EXPECT_TRUE(r->ok()) << r->status().ToString();
        if (r->ok()) ids.push_back((*r)->id());
      }
    }
    return ids;
  }

  std::optional<v1::Session> Read(const std::string& node, const std::string& id) {
    v1::GetRequest request;
    request.set_id(id);
    Result<v1::Session> got = Run(M(node).Get(request));
    if (!got.ok()) return std::nullopt;
    return *got;
  }

  std::string AttributeOn(const std::string& node, const std::string& id, const std::string& name) {
    const std::optional<v1::Session> s = Read(node, id);
    if (!s) return "<no session>";
    auto it = s->attributes().find(name);
    return it == s->attributes().end() ? "<no attribute>" : it->second;
  }

  Status SetAttribute(const std::string& node, const std::string& id, const std::string& name,
                      const std::string& value) {
    v1::UpdateRequest update;
    update.set_id(id);
    (*update.mutable_set())[name] = value;
    Result<v1::Session> updated = Run(M(node).Update(update));
    return updated.status();
  }

  bool DigestsEqual(const std::vector<std::string>& ids) {
    const ContentDigest first = *M(ids[0]).Digest();
    for (const std::string& id : ids) {
      const ContentDigest d = *M(id).Digest();
      if (d.hash != first.hash || d.sessions != first.sessions) return false;
    }
    return true;
  }

  bool Linked(const std::string& from, const std::string& to) {
    std::optional<PeerLinkStatus> link = nodes_.at(from)->cluster->LinkStatus(to);
    return link && link->linked;
  }

  // Ends node `id` as a crash would: its links close, nothing says goodbye.
  void Crash(const std::string& id) {
    nodes_.at(id)->manager.reset();
    nodes_.at(id)->cluster->Stop();
  }

  asio::io_context io_;
  ManualClock clock_;
  RandomIdGenerator ids_;
  DeltaOptions delta_options_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<Relay>> relays_;
};

}  // namespace sessiond::testing

#endif  // SESSIOND_TESTS_UNIT_DELTA_TEST_CLUSTER_H_
