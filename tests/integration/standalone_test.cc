// A real standalone sessiond on loopback, driven through the public client library (and, for the
// bad-input cases, through a raw socket), the way an app server and a misbehaving client would.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sessiond/async_client.h"
#include "sessiond/client.h"
#include "sessiond/frame.h"
#include "tests/support/daemon_process.h"
#include "tests/support/raw_connection.h"

namespace sessiond::test {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

v1::CreateRequest NewSession(std::string principal = "", uint32_t max_idle_s = 600) {
  v1::CreateRequest request;
  request.set_max_idle_s(max_idle_s);
  request.set_principal(std::move(principal));
  (*request.mutable_attributes())["cart"] = "empty";
  (*request.mutable_attributes())["theme"] = "dark";
  return request;
}

class StandaloneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        node_.Start({"--mode", "standalone", "--node-id", "n1", "--max-value-bytes", "4096",
                     "--max-attributes", "8", "--max-sessions", "500", "--max-connections", "16"}));
    auto client = node_.Connect();
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(client).value();
  }

  // A second, independent connection answers: the daemon is still serving everyone else.
  void ExpectStillServing() {
    auto other = node_.Connect();
    ASSERT_TRUE(other.ok()) << other.status().ToString();
    EXPECT_TRUE((*other)->Ping().ok());
    EXPECT_TRUE(client_->Ping().ok());
  }

  DaemonProcess node_{"standalone"};
  std::unique_ptr<Client> client_;
};

TEST_F(StandaloneTest, CreateGetUpdateInvalidate) {
  auto created = client_->Create(NewSession("alice"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->id().size(), 22u);
  EXPECT_EQ(created->version(), 1u);
  EXPECT_EQ(created->principal(), "alice");
  EXPECT_EQ(created->max_idle_s(), 600u);
  EXPECT_GT(created->created_ms(), 0);

  auto got = client_->Get(created->id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->attributes().at("cart"), "empty");

  v1::UpdateRequest update;
  update.set_id(created->id());
  (*update.mutable_set())["cart"] = "3 items";
  update.add_remove("theme");
  auto updated = client_->Update(update);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->version(), 2u);
  EXPECT_EQ(updated->attributes().at("cart"), "3 items");
  EXPECT_FALSE(updated->attributes().contains("theme"));

  ASSERT_TRUE(client_->Invalidate(created->id()).ok());
  auto gone = client_->Get(created->id());
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), v1::NOT_FOUND);
  EXPECT_FALSE(gone.status().message().empty());
  EXPECT_EQ(client_->Invalidate(created->id()).code(), v1::NOT_FOUND);
}

TEST_F(StandaloneTest, UnknownIdsAreNotFound) {
  for (const std::string& id :
       std::vector<std::string>{"", "nope", std::string(22, 'A'), std::string(5000, 'x')}) {
    auto got = client_->Get(id);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), v1::NOT_FOUND) << got.status().ToString();
  }
  v1::UpdateRequest update;
  update.set_id("no-such-session");
  (*update.mutable_set())["a"] = "b";
  EXPECT_EQ(client_->Update(update).status().code(), v1::NOT_FOUND);
  EXPECT_EQ(client_->RotateId("no-such-session").status().code(), v1::NOT_FOUND);
}

TEST_F(StandaloneTest, ConditionalUpdateConflictsOnStaleVersion) {
  auto created = client_->Create(NewSession());
  ASSERT_TRUE(created.ok());

  v1::UpdateRequest first;
  first.set_id(created->id());
  first.set_expected_version(1);
  (*first.mutable_set())["cart"] = "first";
  auto ok = client_->Update(first);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->version(), 2u);

  v1::UpdateRequest stale = first;
  (*stale.mutable_set())["cart"] = "stale";
  auto conflict = client_->Update(stale);
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.status().code(), v1::CONFLICT);

  auto got = client_->Get(created->id());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->attributes().at("cart"), "first");
  EXPECT_EQ(got->version(), 2u);
}

TEST_F(StandaloneTest, TouchDoesNotBumpVersionButRefreshesAccess) {
  auto created = client_->Create(NewSession());
  ASSERT_TRUE(created.ok());
  std::this_thread::sleep_for(milliseconds(20));  // so the access time can move
  auto touched = client_->Get(created->id(), /*touch=*/true);
  ASSERT_TRUE(touched.ok());
  EXPECT_EQ(touched->version(), 1u);
  EXPECT_GT(touched->last_access_ms(), created->last_access_ms());
}

TEST_F(StandaloneTest, RotateIdMovesSessionAndPrincipalIndex) {
  auto created = client_->Create(NewSession("bob"));
  ASSERT_TRUE(created.ok());
  auto rotated = client_->RotateId(created->id());
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  EXPECT_NE(rotated->id(), created->id());
  EXPECT_EQ(rotated->attributes().at("cart"), "empty");
  EXPECT_EQ(client_->Get(created->id()).status().code(), v1::NOT_FOUND);
  EXPECT_TRUE(client_->Get(rotated->id()).ok());

  auto found = client_->FindByPrincipal("bob");
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].id(), rotated->id());
}

TEST_F(StandaloneTest, FindByPrincipalIsExact) {
  std::set<std::string> carols;
  for (int i = 0; i < 3; ++i) {
    auto s = client_->Create(NewSession("carol"));
    ASSERT_TRUE(s.ok());
    carols.insert(s->id());
  }
  ASSERT_TRUE(client_->Create(NewSession("dave")).ok());

  auto found = client_->FindByPrincipal("carol");
  ASSERT_TRUE(found.ok());
  std::set<std::string> ids;
  for (const auto& s : *found) ids.insert(s.id());
  EXPECT_EQ(ids, carols);

  // Moving a session to another principal and invalidating one leaves no stale entry.
  v1::UpdateRequest move;
  move.set_id(*carols.begin());
  move.set_principal("dave");
  ASSERT_TRUE(client_->Update(move).ok());
  ASSERT_TRUE(client_->Invalidate(*std::next(carols.begin())).ok());
  found = client_->FindByPrincipal("carol");
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].id(), *std::prev(carols.end()));
  EXPECT_EQ(client_->FindByPrincipal("dave")->size(), 2u);
  EXPECT_TRUE(client_->FindByPrincipal("nobody")->empty());
}

TEST_F(StandaloneTest, WatchSeesEveryKindOfEvent) {
  auto watch = client_->Watch({});
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();

  auto created = client_->Create(NewSession("erin", /*max_idle_s=*/1));
  ASSERT_TRUE(created.ok());
  v1::UpdateRequest update;
  update.set_id(created->id());
  (*update.mutable_set())["cart"] = "full";
  ASSERT_TRUE(client_->Update(update).ok());
  auto rotated = client_->RotateId(created->id());
  ASSERT_TRUE(rotated.ok());
  auto other = client_->Create(NewSession());
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(client_->Invalidate(other->id()).ok());

  auto next = [&]() {
    auto event = (*watch)->Next(milliseconds(5000));
    EXPECT_TRUE(event.ok()) << event.status().ToString();
    return event.ok() ? *event : v1::SessionEvent();
  };
  auto e = next();
  EXPECT_EQ(e.kind(), v1::SessionEvent::CREATED);
  EXPECT_EQ(e.id(), created->id());
  EXPECT_EQ(e.origin_node(), "n1");
  e = next();
  EXPECT_EQ(e.kind(), v1::SessionEvent::CHANGED);
  EXPECT_EQ(e.version(), 2u);
  e = next();
  EXPECT_EQ(e.kind(), v1::SessionEvent::ID_CHANGED);
  EXPECT_EQ(e.id(), created->id());
  EXPECT_EQ(e.new_id(), rotated->id());
  EXPECT_EQ(next().kind(), v1::SessionEvent::CREATED);
  e = next();
  EXPECT_EQ(e.kind(), v1::SessionEvent::INVALIDATED);
  EXPECT_EQ(e.id(), other->id());
  // The 1-second session expires on its own, under its rotated id.
  e = next();
  EXPECT_EQ(e.kind(), v1::SessionEvent::EXPIRED);
  EXPECT_EQ(e.id(), rotated->id());
  EXPECT_EQ(client_->Get(rotated->id()).status().code(), v1::NOT_FOUND);
  EXPECT_TRUE(client_->FindByPrincipal("erin")->empty());
}

TEST_F(StandaloneTest, WatchOnOneIdFollowsRotation) {
  auto mine = client_->Create(NewSession());
  auto noise = client_->Create(NewSession());
  ASSERT_TRUE(mine.ok() && noise.ok());
  auto watch = client_->Watch({mine->id()});
  ASSERT_TRUE(watch.ok());

  v1::UpdateRequest touch_noise;
  touch_noise.set_id(noise->id());
  (*touch_noise.mutable_set())["x"] = "y";
  ASSERT_TRUE(client_->Update(touch_noise).ok());
  auto rotated = client_->RotateId(mine->id());
  ASSERT_TRUE(rotated.ok());
  v1::UpdateRequest change;
  change.set_id(rotated->id());
  (*change.mutable_set())["cart"] = "after rotation";
  ASSERT_TRUE(client_->Update(change).ok());

  auto e = (*watch)->Next(milliseconds(5000));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind(), v1::SessionEvent::ID_CHANGED);
  e = (*watch)->Next(milliseconds(5000));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind(), v1::SessionEvent::CHANGED);
  EXPECT_EQ(e->id(), rotated->id());
  // Nothing about the other session arrived.
  EXPECT_FALSE((*watch)->Next(milliseconds(200)).ok());
}

TEST_F(StandaloneTest, PipelinedRequestsAreMatchedByRequestId) {
  asio::io_context io;
  AsyncClient async(io.get_executor(), node_.client_options());
  constexpr int kSessions = 200;
  constexpr int kReadsEach = 10;
  int ok_reads = 0;
  int bad = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        std::vector<std::string> ids;
        for (int i = 0; i < kSessions; ++i) {
          v1::CreateRequest request = NewSession();
          (*request.mutable_attributes())["n"] = std::to_string(i);
          auto s = co_await async.Create(request);
          if (!s.ok()) {
            ++bad;
            co_return;
          }
          ids.push_back(s->id());
        }
        // Many reads in flight at once on one connection; each must come back with its own
        // session.
        int pending = kSessions * kReadsEach;
        asio::steady_timer done(io, std::chrono::steady_clock::time_point::max());
        for (int r = 0; r < kReadsEach; ++r) {
          for (int i = 0; i < kSessions; ++i) {
            asio::co_spawn(
                io,
                [&, i]() -> asio::awaitable<void> {
                  auto s = co_await async.Get(ids[i]);
                  if (s.ok() && s->attributes().at("n") == std::to_string(i)) {
                    ++ok_reads;
                  } else {
                    ++bad;
                  }
                  if (--pending == 0) done.cancel();
                },
                asio::detached);
          }
        }
        boost::system::error_code ec;
        co_await done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        async.Close();
      },
      asio::detached);
  io.run_for(std::chrono::seconds(60));
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(ok_reads, kSessions * kReadsEach);
}

TEST_F(StandaloneTest, UnixSocketServesTheSameProtocol) {
  DaemonProcess unix_node("unix");
  std::string path = std::filesystem::temp_directory_path() /
                     ("sessiond-test-" + std::to_string(::getpid()) + ".sock");
  ASSERT_TRUE(unix_node.Start({"--mode", "standalone", "--unix", path}));
  ClientOptions options;
  options.endpoints.push_back(*Endpoint::Parse("unix:" + path));
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto created = (*client)->Create(NewSession());
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE((*client)->Get(created->id()).ok());
  client->reset();
  unix_node.Terminate();
  EXPECT_EQ(unix_node.WaitExit(), 0);
  EXPECT_FALSE(std::filesystem::exists(path)) << "the socket file is removed on shutdown";
}

TEST_F(StandaloneTest, ClientFailsOverToTheNextEndpoint) {
  // A port nothing listens on: bind one and close it.
  uint16_t dead_port;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    dead_port = acceptor.local_endpoint().port();
  }
  ClientOptions options;
  options.endpoints.push_back(*Endpoint::Parse("127.0.0.1:" + std::to_string(dead_port)));
  options.endpoints.push_back(node_.endpoint());
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_TRUE((*client)->Ping().ok());
}

TEST_F(StandaloneTest, NoEndpointReachableIsUnavailable) {
  ClientOptions options;
  options.endpoints.push_back(*Endpoint::Parse("127.0.0.1:1"));
  auto client = Client::Connect(options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), v1::UNAVAILABLE);
}

TEST_F(StandaloneTest, LimitsAnswerClearStatuses) {
  v1::CreateRequest big = NewSession();
  (*big.mutable_attributes())["blob"] = std::string(5000, 'x');
  auto too_large = client_->Create(big);
  ASSERT_FALSE(too_large.ok());
  EXPECT_EQ(too_large.status().code(), v1::TOO_LARGE);
  EXPECT_FALSE(too_large.status().message().empty());

  v1::CreateRequest many = NewSession();
  for (int i = 0; i < 20; ++i) (*many.mutable_attributes())["a" + std::to_string(i)] = "v";
  EXPECT_EQ(client_->Create(many).status().code(), v1::RESOURCE_EXHAUSTED);

  auto created = client_->Create(NewSession());
  ASSERT_TRUE(created.ok());
  v1::UpdateRequest grow;
  grow.set_id(created->id());
  (*grow.mutable_set())["blob"] = std::string(5000, 'x');
  EXPECT_EQ(client_->Update(grow).status().code(), v1::TOO_LARGE);
  // The refused update changed nothing.
  auto got = client_->Get(created->id());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version(), 1u);
  EXPECT_FALSE(got->attributes().contains("blob"));

  // --max-sessions 500.
  int refused = 0;
  for (int i = 0; i < 520 && refused == 0; ++i) {
    auto s = client_->Create(NewSession());
    if (!s.ok()) {
      EXPECT_EQ(s.status().code(), v1::RESOURCE_EXHAUSTED) << s.status().ToString();
      ++refused;
    }
  }
  EXPECT_EQ(refused, 1);
  ExpectStillServing();
}

TEST_F(StandaloneTest, GarbageBytesAreRefusedAndTheConnectionClosed) {
  RawConnection raw(node_.client_port());
  ASSERT_TRUE(raw.connected());
  // A plausible length, reserved flag bits set.
  ASSERT_TRUE(
      raw.Send(std::string("\x00\x00\x00\x05\xfe"
                           "abcd",
                           9)));
  auto response = raw.ReadResponse(milliseconds(5000));
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status(), v1::INVALID_ARGUMENT);
  EXPECT_FALSE(response->error().empty());
  EXPECT_TRUE(raw.WaitClosed(milliseconds(5000)));
  ExpectStillServing();
}

TEST_F(StandaloneTest, PayloadThatIsNotARequestIsRefused) {
  RawConnection raw(node_.client_port());
  ASSERT_TRUE(raw.connected());
  std::string frame;
  // 0xff bytes: field 31 with an invalid wire type; not a ClientRequest.
  ASSERT_TRUE(AppendFrame(frame, std::string(16, '\xff'), FrameOptions{}).ok());
  ASSERT_TRUE(raw.Send(frame));
  auto response = raw.ReadResponse(milliseconds(5000));
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status(), v1::INVALID_ARGUMENT);
  EXPECT_TRUE(raw.WaitClosed(milliseconds(5000)));
  ExpectStillServing();
}

TEST_F(StandaloneTest, OversizedFrameIsRefusedBeforeItsBodyIsRead) {
  RawConnection raw(node_.client_port());
  ASSERT_TRUE(raw.connected());
  // Announce 1 GiB and send nothing more: the daemon must answer from the header alone.
  ASSERT_TRUE(raw.Send(std::string("\x40\x00\x00\x00\x00", 5)));
  auto response = raw.ReadResponse(milliseconds(5000));
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status(), v1::TOO_LARGE);
  EXPECT_TRUE(raw.WaitClosed(milliseconds(5000)));
  ExpectStillServing();
}

TEST_F(StandaloneTest, TruncatedFrameDoesNotDisturbOthers) {
  {
    RawConnection raw(node_.client_port());
    ASSERT_TRUE(raw.connected());
    v1::ClientRequest ping;
    ping.set_request_id(7);
    ping.mutable_ping();
    std::string frame;
    ASSERT_TRUE(AppendMessageFrame(frame, ping, FrameOptions{}).ok());
    // Half a frame, then hang up.
    ASSERT_TRUE(raw.Send(std::string_view(frame).substr(0, frame.size() / 2)));
  }
  ExpectStillServing();
}

TEST_F(StandaloneTest, RequestWithNoOperationKeepsTheConnection) {
  RawConnection raw(node_.client_port());
  ASSERT_TRUE(raw.connected());
  v1::ClientRequest empty;
  empty.set_request_id(41);
  ASSERT_TRUE(raw.SendRequest(empty));
  auto response = raw.ReadResponse(milliseconds(5000));
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->request_id(), 41u);
  EXPECT_EQ(response->status(), v1::INVALID_ARGUMENT);

  v1::ClientRequest ping;
  ping.set_request_id(42);
  ping.mutable_ping();
  ASSERT_TRUE(raw.SendRequest(ping));
  response = raw.ReadResponse(milliseconds(5000));
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->request_id(), 42u);
  EXPECT_EQ(response->status(), v1::OK);
}

TEST_F(StandaloneTest, ConnectionsOverTheLimitAreRefused) {
  std::vector<std::unique_ptr<RawConnection>> held;
  v1::ClientRequest ping;
  ping.set_request_id(1);
  ping.mutable_ping();
  bool refused = false;
  for (int i = 0; i < 24 && !refused; ++i) {
    auto raw = std::make_unique<RawConnection>(node_.client_port());
    ASSERT_TRUE(raw->connected());
    raw->SendRequest(ping);
    auto response = raw->ReadResponse(milliseconds(5000));
    ASSERT_TRUE(response.has_value());
    if (response->status() == v1::RESOURCE_EXHAUSTED) {
      EXPECT_THAT(response->error(), HasSubstr("connection"));
      refused = true;
    }
    held.push_back(std::move(raw));
  }
  EXPECT_TRUE(refused) << "--max-connections 16 was not enforced";
  held.clear();
  // Once the others hang up, new connections are served again.
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    auto client = node_.Connect();
    served = client.ok() && (*client)->Ping().ok();
    if (!served) std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(served);
}

TEST_F(StandaloneTest, AdminEndpointReportsHealthAndMetrics) {
  ASSERT_TRUE(client_->Create(NewSession()).ok());
  auto health = node_.HttpGet("/healthz");
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  EXPECT_EQ(health->status, 200);
  auto ready = node_.HttpGet("/readyz");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200);
  auto metrics = node_.HttpGet("/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->body, HasSubstr("# TYPE"));
  EXPECT_THAT(metrics->body, HasSubstr("create"));
  auto cluster = node_.HttpGet("/cluster");
  ASSERT_TRUE(cluster.ok());
  EXPECT_EQ(cluster->status, 200);
  EXPECT_THAT(cluster->body, HasSubstr("\"n1\""));
  EXPECT_EQ(node_.HttpGet("/no-such-page")->status, 404);
}

TEST_F(StandaloneTest, StatsCountSessions) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client_->Create(NewSession()).ok());
  auto stats = client_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->node_id(), "n1");
  EXPECT_EQ(stats->mode(), "standalone");
  EXPECT_EQ(stats->sessions(), 5u);
}

TEST_F(StandaloneTest, SigtermExitsZeroAndClientsSeeUnavailable) {
  ASSERT_TRUE(client_->Create(NewSession()).ok());
  node_.Terminate();
  EXPECT_EQ(node_.WaitExit(), 0) << node_.LogTail();
  auto after = client_->Ping(milliseconds(1000));
  EXPECT_EQ(after.code(), v1::UNAVAILABLE);
}

TEST_F(StandaloneTest, SessionctlDrivesTheDaemon) {
  std::string ctl =
      std::string(SESSIOND_BIN_DIR) + "/sessionctl --endpoint " + node_.endpoint_text() + " ";
  auto run = [](const std::string& command) {
    std::string out;
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) return std::make_pair(-1, out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    int status = ::pclose(pipe);
    return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
  };
  auto [rc, out] = run(ctl + "--json create --principal frank --attr cart=one");
  ASSERT_EQ(rc, 0) << out;
  auto at = out.find("\"id\"");
  ASSERT_NE(at, std::string::npos) << out;
  auto start = out.find('"', out.find(':', at)) + 1;
  std::string id = out.substr(start, out.find('"', start) - start);
  ASSERT_EQ(id.size(), 22u) << out;

  std::tie(rc, out) = run(ctl + "set " + id + " cart=two");
  EXPECT_EQ(rc, 0) << out;
  auto got = client_->Get(id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->attributes().at("cart"), "two");

  std::tie(rc, out) = run(ctl + "get no-such-id");
  EXPECT_NE(rc, 0);
  std::tie(rc, out) = run(ctl + "ping");
  EXPECT_EQ(rc, 0) << out;
}

}  // namespace
}  // namespace sessiond::test
