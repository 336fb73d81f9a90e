#include "sessiond/request_handler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "replication/clock.h"
#include "replication/session_id.h"
#include "replication/standalone_manager.h"
#include "sessiond/asio.h"
#include "sessiond/connection_context.h"
#include "sessiond/metrics.h"

namespace sessiond {
namespace {

// Records what the handler asks of the connection.
class RecordingConnection final : public ConnectionContext {
 public:
  void PushWatchEvent(uint64_t watch_request_id, const v1::SessionEvent& event) override {
    pushed.emplace_back(watch_request_id, event);
  }
  Status AdoptWatch(std::unique_ptr<WatchHandle> handle) override {
    if (refuse_watches) return ResourceExhausted("no more watches on this connection");
    watches.push_back(std::move(handle));
    return Status::Ok();
  }

  bool refuse_watches = false;
  std::vector<std::pair<uint64_t, v1::SessionEvent>> pushed;
  std::vector<std::unique_ptr<WatchHandle>> watches;
};

asio::awaitable<void> HandleInto(RequestHandler& handler, v1::ClientRequest& request,
                                 ConnectionContext& connection, v1::ClientResponse& response,
                                 bool* done) {
  co_await handler.Handle(request, connection, response);
  *done = true;
}

class RequestHandlerTest : public ::testing::Test {
 protected:
  RequestHandlerTest()
      : manager_(io_.get_executor(), ManagerOptions{"node-a", SessionLimits{}, &clock_, &ids_}),
        handler_(manager_, &metrics_) {}

  ~RequestHandlerTest() override {
    // Watches end on the manager's loop, before the manager goes.
    connection_.watches.clear();
  }

  // Runs one request through the handler to completion; no timers are waited on.
  v1::ClientResponse Call(v1::ClientRequest request) {
    v1::ClientResponse response;
    bool done = false;
    io_.restart();
    asio::co_spawn(io_, HandleInto(handler_, request, connection_, response, &done),
                   asio::detached);
    while (!done && io_.run_one() > 0) {
    }
    EXPECT_TRUE(done) << "the handler did not complete without waiting";
    return response;
  }

  v1::Session CreateSession(const std::string& principal = "") {
    v1::ClientRequest request;
    request.set_request_id(++next_id_);
    request.mutable_create()->set_principal(principal);
    (*request.mutable_create()->mutable_attributes())["cart"] = "3 items";
    v1::ClientResponse response = Call(std::move(request));
    EXPECT_EQ(response.status(), v1::OK) << response.error();
    return response.session();
  }

  asio::io_context io_;
  ManualClock clock_;
  RandomIdGenerator ids_;
  Metrics metrics_;
  StandaloneManager manager_;
  RequestHandler handler_;
  RecordingConnection connection_;
  uint64_t next_id_ = 100;
};

TEST_F(RequestHandlerTest, CreateAnswersTheNewSessionWithTheRequestId) {
  v1::ClientRequest request;
  request.set_request_id(7);
  request.mutable_create()->set_max_idle_s(120);
  request.mutable_create()->set_principal("alice");
  (*request.mutable_create()->mutable_attributes())["theme"] = "dark";

  v1::ClientResponse response = Call(request);

  EXPECT_EQ(response.request_id(), 7u);
  EXPECT_EQ(response.status(), v1::OK);
  EXPECT_TRUE(response.error().empty());
  ASSERT_TRUE(response.has_session());
  EXPECT_TRUE(IsWellFormedSessionId(response.session().id()));
  EXPECT_EQ(response.session().max_idle_s(), 120u);
  EXPECT_EQ(response.session().principal(), "alice");
  EXPECT_EQ(response.session().attributes().at("theme"), "dark");
  EXPECT_EQ(metrics_.requests(Metrics::Op::kCreate, v1::OK), 1u);
}

TEST_F(RequestHandlerTest, GetReturnsTheSessionAndNotFoundForAnUnknownId) {
  const v1::Session created = CreateSession();

  v1::ClientRequest get;
  get.set_request_id(8);
  get.mutable_get()->set_id(created.id());
  v1::ClientResponse found = Call(get);
  EXPECT_EQ(found.status(), v1::OK);
  EXPECT_EQ(found.session().id(), created.id());
  EXPECT_EQ(found.session().attributes().at("cart"), "3 items");

  v1::ClientRequest missing;
  missing.set_request_id(9);
  missing.mutable_get()->set_id(RandomIdGenerator().NewId());
  v1::ClientResponse not_found = Call(missing);
  EXPECT_EQ(not_found.request_id(), 9u);
  EXPECT_EQ(not_found.status(), v1::NOT_FOUND);
  EXPECT_FALSE(not_found.error().empty());
  EXPECT_FALSE(not_found.has_session());
  EXPECT_EQ(metrics_.requests(Metrics::Op::kGet, v1::NOT_FOUND), 1u);
  EXPECT_EQ(metrics_.latency(Metrics::Op::kGet).count(), 2u);
}

TEST_F(RequestHandlerTest, UpdateAppliesTheDeltaAndRefusesAStaleVersion) {
  const v1::Session created = CreateSession();

  v1::ClientRequest update;
  update.set_request_id(10);
  update.mutable_update()->set_id(created.id());
  update.mutable_update()->set_expected_version(created.version());
  (*update.mutable_update()->mutable_set())["step"] = "2";
  update.mutable_update()->add_remove("cart");
  v1::ClientResponse updated = Call(update);
  ASSERT_EQ(updated.status(), v1::OK) << updated.error();
  EXPECT_EQ(updated.session().attributes().at("step"), "2");
  EXPECT_EQ(updated.session().attributes().count("cart"), 0u);
  EXPECT_GT(updated.session().version(), created.version());

  // The same expected version again is stale now.
  v1::ClientRequest stale;
  stale.set_request_id(11);
  stale.mutable_update()->set_id(created.id());
  stale.mutable_update()->set_expected_version(created.version());
  (*stale.mutable_update()->mutable_set())["step"] = "3";
  v1::ClientResponse conflict = Call(stale);
  EXPECT_EQ(conflict.status(), v1::CONFLICT);
  EXPECT_FALSE(conflict.error().empty());
}

TEST_F(RequestHandlerTest, InvalidateAnswersOkWithNoResult) {
  const v1::Session created = CreateSession();

  v1::ClientRequest invalidate;
  invalidate.set_request_id(12);
  invalidate.mutable_invalidate()->set_id(created.id());
  v1::ClientResponse response = Call(invalidate);
  EXPECT_EQ(response.status(), v1::OK);
  EXPECT_EQ(response.result_case(), v1::ClientResponse::RESULT_NOT_SET);

  v1::ClientRequest get;
  get.mutable_get()->set_id(created.id());
  EXPECT_EQ(Call(get).status(), v1::NOT_FOUND);
}

TEST_F(RequestHandlerTest, RotateIdAnswersTheSessionUnderItsNewId) {
  const v1::Session created = CreateSession();

  v1::ClientRequest rotate;
  rotate.set_request_id(13);
  rotate.mutable_rotate_id()->set_id(created.id());
  v1::ClientResponse response = Call(rotate);
  ASSERT_EQ(response.status(), v1::OK) << response.error();
  EXPECT_NE(response.session().id(), created.id());
  EXPECT_EQ(response.session().attributes().at("cart"), "3 items");
}

TEST_F(RequestHandlerTest, FindByPrincipalListsThatPrincipalsSessions) {
  const v1::Session first = CreateSession("bob");
  const v1::Session second = CreateSession("bob");
  CreateSession("carol");

  v1::ClientRequest find;
  find.set_request_id(14);
  find.mutable_find_by_principal()->set_principal("bob");
  v1::ClientResponse response = Call(find);
  ASSERT_EQ(response.status(), v1::OK) << response.error();
  ASSERT_TRUE(response.has_sessions());
  std::vector<std::string> ids;
  for (const v1::Session& session : response.sessions().sessions()) ids.push_back(session.id());
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_NE(std::find(ids.begin(), ids.end(), first.id()), ids.end());
  EXPECT_NE(std::find(ids.begin(), ids.end(), second.id()), ids.end());
}

TEST_F(RequestHandlerTest, PingAnswersOk) {
  v1::ClientRequest ping;
  ping.set_request_id(15);
  ping.mutable_ping();
  v1::ClientResponse response = Call(ping);
  EXPECT_EQ(response.request_id(), 15u);
  EXPECT_EQ(response.status(), v1::OK);
  EXPECT_EQ(metrics_.requests(Metrics::Op::kPing, v1::OK), 1u);
}

TEST_F(RequestHandlerTest, StatsAnswersTheManagersStats) {
  CreateSession();
  v1::ClientRequest stats;
  stats.set_request_id(16);
  stats.mutable_stats();
  v1::ClientResponse response = Call(stats);
  ASSERT_EQ(response.status(), v1::OK);
  ASSERT_TRUE(response.has_stats());
  EXPECT_EQ(response.stats().node_id(), "node-a");
  EXPECT_EQ(response.stats().mode(), "standalone");
  EXPECT_EQ(response.stats().sessions(), 1u);
}

TEST_F(RequestHandlerTest, ARequestWithNoOperationIsInvalidArgument) {
  v1::ClientRequest empty;
  empty.set_request_id(17);
  v1::ClientResponse response = Call(empty);
  EXPECT_EQ(response.request_id(), 17u);
  EXPECT_EQ(response.status(), v1::INVALID_ARGUMENT);
  EXPECT_NE(response.error().find("no operation"), std::string::npos) << response.error();
}

TEST_F(RequestHandlerTest, WatchAnswersOkThenPushesEventsWithTheWatchsRequestId) {
  v1::ClientRequest watch;
  watch.set_request_id(18);
  watch.mutable_watch();  // every session
  v1::ClientResponse response = Call(watch);
  ASSERT_EQ(response.status(), v1::OK) << response.error();
  EXPECT_EQ(response.request_id(), 18u);
  EXPECT_EQ(connection_.watches.size(), 1u);
  EXPECT_TRUE(connection_.pushed.empty());

  const v1::Session created = CreateSession();

  ASSERT_EQ(connection_.pushed.size(), 1u);
  EXPECT_EQ(connection_.pushed[0].first, 18u);
  EXPECT_EQ(connection_.pushed[0].second.kind(), v1::SessionEvent::CREATED);
  EXPECT_EQ(connection_.pushed[0].second.id(), created.id());
}

TEST_F(RequestHandlerTest, WatchOnIdsPushesOnlyTheirEvents) {
  const v1::Session watched = CreateSession();
  const v1::Session other = CreateSession();
  v1::ClientRequest watch;
  watch.set_request_id(19);
  watch.mutable_watch()->add_ids(watched.id());
  ASSERT_EQ(Call(watch).status(), v1::OK);

  for (const v1::Session* session : {&other, &watched}) {
    v1::ClientRequest invalidate;
    invalidate.mutable_invalidate()->set_id(session->id());
    ASSERT_EQ(Call(invalidate).status(), v1::OK);
  }

  ASSERT_EQ(connection_.pushed.size(), 1u);
  EXPECT_EQ(connection_.pushed[0].first, 19u);
  EXPECT_EQ(connection_.pushed[0].second.kind(), v1::SessionEvent::INVALIDATED);
  EXPECT_EQ(connection_.pushed[0].second.id(), watched.id());
}

TEST_F(RequestHandlerTest, AWatchTheConnectionCannotHoldIsRefusedAndEnded) {
  connection_.refuse_watches = true;
  v1::ClientRequest watch;
  watch.set_request_id(20);
  watch.mutable_watch();
  v1::ClientResponse response = Call(watch);
  EXPECT_EQ(response.status(), v1::RESOURCE_EXHAUSTED);
  EXPECT_FALSE(response.error().empty());

  // The refused watch's handle was dropped, so it sees nothing.
  CreateSession();
  EXPECT_TRUE(connection_.pushed.empty());
}

}  // namespace
}  // namespace sessiond
