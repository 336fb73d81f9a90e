// Redis mode end to end: real sessiond processes in `--mode redis` sharing one real redis-server,
// driven through the public client library the way app servers on two nodes would, with Redis
// itself inspected over a plain connection to check what the daemons left there.
//
// The Redis these tests start has persistence off, so after a restart it is empty: a session
// from before an outage is NOT_FOUND afterwards. With persistence it would survive; that is
// Redis's promise, not sessiond's.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <latch>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "replication/redis/redis_command.h"
#include "replication/redis/redis_connection.h"
#include "replication/redis/redis_manager.h"
#include "replication/redis/redis_reply.h"
#include "replication/redis/redis_session_layout.h"
#include "replication/redis/redis_url.h"
#include "sessiond/asio.h"
#include "sessiond/client.h"
#include "tests/support/daemon_process.h"
#include "tests/support/redis_process.h"

namespace sessiond::test {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

// Reads Redis directly, from the test thread: each Query runs a private io_context until its
// reply is in. Connects on first use and again after the connection closed (an outage).
class RedisInspector {
 public:
  explicit RedisInspector(const std::string& url) : url_(RedisUrl::Parse(url).value()) {}
  // Closes the connection and lets its coroutines finish before the io_context goes: Boost
  // 1.74 aborts when an io_context is destroyed with coroutine completions still queued.
  ~RedisInspector() {
    if (!connection_) return;
    connection_->Close(Unavailable("the test is over"));
    connection_.reset();
    io_.restart();
    io_.run_for(2s);
  }

  // Redis's reply to `args` (an error reply is a reply), or UNAVAILABLE.
  Result<RedisReply> Query(std::vector<std::string> args) {
    std::optional<Result<RedisReply>> out;
    asio::co_spawn(io_, Run(std::move(args), &out), asio::detached);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!out && std::chrono::steady_clock::now() < deadline) {
      if (io_.stopped()) io_.restart();
      io_.run_one_for(100ms);
    }
    if (!out) return Unavailable("Redis did not answer the test's query within 10 s");
    return std::move(*out);
  }

 private:
  asio::awaitable<void> Run(std::vector<std::string> args, std::optional<Result<RedisReply>>* out) {
    if (!connection_ || !connection_->is_open()) {
      // A named object, not a `{}` temporary: GCC 12 copies a temporary argument of a
      // coroutine called in a co_await bitwise, leaving its strings pointing into this frame.
      RedisConnectionOptions options;
      Result<std::shared_ptr<RedisConnection>> c =
          co_await RedisConnection::Connect(io_.get_executor(), url_, options);
      if (!c.ok()) {
        out->emplace(c.status());
        co_return;
      }
      connection_ = std::move(c).value();
    }
    out->emplace(co_await connection_->Execute(RedisCommand(args)));
  }

  asio::io_context io_;
  RedisUrl url_;
  std::shared_ptr<RedisConnection> connection_;
};

v1::CreateRequest NewSession(std::string principal = "", uint32_t max_idle_s = 600) {
  v1::CreateRequest request;
  request.set_max_idle_s(max_idle_s);
  request.set_principal(std::move(principal));
  (*request.mutable_attributes())["cart"] = "empty";
  (*request.mutable_attributes())["lang"] = "en";
  return request;
}

v1::UpdateRequest SetAttribute(const std::string& id, const std::string& name,
                               const std::string& value, uint64_t expected_version = 0) {
  v1::UpdateRequest request;
  request.set_id(id);
  request.set_expected_version(expected_version);
  (*request.mutable_set())[name] = value;
  return request;
}

std::vector<std::string> SortedIds(const std::vector<v1::Session>& sessions) {
  std::vector<std::string> ids;
  for (const v1::Session& s : sessions) ids.push_back(s.id());
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::string> Sorted(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  return ids;
}

int64_t NowMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The first event on `stream` that `match` accepts, skipping the others, within `limit`;
// nullopt when none came or the watch ended.
std::optional<v1::SessionEvent> AwaitEvent(
    WatchStream& stream, const std::function<bool(const v1::SessionEvent&)>& match,
    milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (auto now = std::chrono::steady_clock::now(); now < deadline;
       now = std::chrono::steady_clock::now()) {
    Result<v1::SessionEvent> event =
        stream.Next(std::chrono::duration_cast<milliseconds>(deadline - now));
    if (!event.ok()) return std::nullopt;
    if (match(*event)) return *event;
  }
  return std::nullopt;
}

// Polls `node`'s /readyz until it answers `status` or `limit` passes. Polling is the only way to
// observe readiness from outside, which is what an orchestrator does too.
::testing::AssertionResult ReadyzBecomes(const DaemonProcess& node, int status,
                                         milliseconds limit = 15s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::string last = "no answer";
  while (std::chrono::steady_clock::now() < deadline) {
    Result<HttpReply> reply = node.HttpGet("/readyz", 2s);
    if (reply.ok()) {
      if (reply->status == status) return ::testing::AssertionSuccess();
      last = std::to_string(reply->status) + " " + reply->body;
    } else {
      last = reply.status().ToString();
    }
    std::this_thread::sleep_for(50ms);
  }
  return ::testing::AssertionFailure() << "/readyz did not answer " << status << " within "
                                       << limit.count() << " ms; last: " << last;
}

class RedisModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start());
    inspector_ = std::make_unique<RedisInspector>(redis_.url());
  }

  // Starts n1 and n2 in redis mode on redis_, with `extra` flags, and connects c1 and c2.
  void StartBoth(const std::vector<std::string>& extra = {}) {
    ASSERT_NO_FATAL_FAILURE(StartNode(n1_, "n1", extra, &c1_));
    ASSERT_NO_FATAL_FAILURE(StartNode(n2_, "n2", extra, &c2_));
  }

  void StartNode(DaemonProcess& node, const std::string& id, const std::vector<std::string>& extra,
                 std::unique_ptr<Client>* client) {
    std::vector<std::string> args{"--mode", "redis", "--node-id", id, "--redis", redis_.url()};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(node.Start(args));
    ASSERT_TRUE(ReadyzBecomes(node, 200)) << node.LogTail();
    Result<std::unique_ptr<Client>> connected = node.Connect();
    ASSERT_TRUE(connected.ok()) << connected.status().ToString();
    *client = std::move(connected).value();
  }

  v1::Session CreateOk(Client& client, const v1::CreateRequest& request) {
    Result<v1::Session> created = client.Create(request);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? *created : v1::Session();
  }

  int64_t Pttl(const std::string& id) {
    Result<RedisReply> ttl = inspector_->Query({"PTTL", layout_.SessionKey(id)});
    EXPECT_TRUE(ttl.ok() && ttl->is_integer()) << ttl.status().ToString();
    return ttl.ok() ? ttl->integer() : -3;
  }

  // The principal set in Redis, member -> score (the member's deadline in ms).
  std::vector<std::pair<std::string, int64_t>> PrincipalSet(const std::string& principal) {
    Result<RedisReply> reply =
        inspector_->Query({"ZRANGE", layout_.PrincipalKey(principal), "0", "-1", "WITHSCORES"});
    EXPECT_TRUE(reply.ok() && reply->is_array()) << reply.status().ToString();
    std::vector<std::pair<std::string, int64_t>> members;
    if (!reply.ok()) return members;
    const std::vector<RedisReply>& e = reply->elements();
    for (size_t i = 0; i + 1 < e.size(); i += 2) {
      members.emplace_back(e[i].text(), std::stoll(e[i + 1].text()));
    }
    return members;
  }

  RedisProcess redis_;
  std::unique_ptr<RedisInspector> inspector_;
  // The daemons use RedisOptions' default key prefix and database 0.
  const RedisSessionLayout layout_{RedisOptions{}.key_prefix, 0};
  DaemonProcess n1_{"n1"};
  DaemonProcess n2_{"n2"};
  std::unique_ptr<Client> c1_;
  std::unique_ptr<Client> c2_;
};

TEST_F(RedisModeTest, TwoNodesShareTheirSessions) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  const v1::Session created = CreateOk(*c1_, NewSession("ann"));
  ASSERT_FALSE(created.id().empty());

  Result<v1::Session> on_n2 = c2_->Get(created.id());
  ASSERT_TRUE(on_n2.ok()) << on_n2.status().ToString();
  EXPECT_EQ(on_n2->version(), 1u);
  EXPECT_EQ(on_n2->principal(), "ann");
  EXPECT_EQ(on_n2->created_ms(), created.created_ms());
  EXPECT_EQ(on_n2->attributes().at("cart"), "empty");

  v1::UpdateRequest update = SetAttribute(created.id(), "cart", "3 items");
  update.add_remove("lang");
  Result<v1::Session> updated = c2_->Update(update);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->version(), 2u);

  Result<v1::Session> on_n1 = c1_->Get(created.id());
  ASSERT_TRUE(on_n1.ok()) << on_n1.status().ToString();
  EXPECT_EQ(on_n1->version(), 2u);
  EXPECT_EQ(on_n1->attributes().at("cart"), "3 items");
  EXPECT_FALSE(on_n1->attributes().contains("lang"));

  Result<v1::Session> touched = c2_->Get(created.id(), /*touch=*/true);
  ASSERT_TRUE(touched.ok()) << touched.status().ToString();
  EXPECT_EQ(touched->version(), 2u);  // a touch is not a change
  EXPECT_GE(touched->last_access_ms(), created.last_access_ms());

  Result<std::vector<v1::Session>> found = c1_->FindByPrincipal("ann");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(SortedIds(*found), std::vector<std::string>{created.id()});

  Result<v1::Session> rotated = c2_->RotateId(created.id());
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  EXPECT_NE(rotated->id(), created.id());
  EXPECT_EQ(c1_->Get(created.id()).status().code(), v1::NOT_FOUND);
  Result<v1::Session> moved = c1_->Get(rotated->id());
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(moved->attributes().at("cart"), "3 items");

  ASSERT_TRUE(c1_->Invalidate(rotated->id()).ok());
  Result<v1::Session> gone = c2_->Get(rotated->id());
  EXPECT_EQ(gone.status().code(), v1::NOT_FOUND);
  EXPECT_FALSE(gone.status().message().empty());
  EXPECT_EQ(c2_->Invalidate(rotated->id()).code(), v1::NOT_FOUND);

  Result<v1::NodeStats> stats = c2_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->mode(), "redis");
  EXPECT_EQ(stats->node_id(), "n2");
}

TEST_F(RedisModeTest, TheKeyCarriesTheSessionsDeadlineAsItsTtl) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  const v1::Session idle_only = CreateOk(*c1_, NewSession("", 100));
  // The idle timeout plus one touch window (max_idle_s / 4), capped by the lifetime.
  int64_t ttl = Pttl(idle_only.id());
  EXPECT_LE(ttl, 125'000);
  EXPECT_GT(ttl, 115'000);

  v1::CreateRequest capped_request = NewSession("", 100);
  capped_request.set_max_lifetime_s(30);
  const v1::Session capped = CreateOk(*c1_, capped_request);
  ttl = Pttl(capped.id());
  EXPECT_LE(ttl, 30'000);
  EXPECT_GT(ttl, 20'000);

  // A touch through the other node moves the deadline, as if time had passed first...
  ASSERT_TRUE(inspector_->Query({"PEXPIRE", layout_.SessionKey(idle_only.id()), "50000"}).ok());
  ASSERT_TRUE(c2_->Get(idle_only.id(), /*touch=*/true).ok());
  EXPECT_GT(Pttl(idle_only.id()), 90'000);
  // ...but never past the lifetime.
  ASSERT_TRUE(c2_->Get(capped.id(), /*touch=*/true).ok());
  EXPECT_LE(Pttl(capped.id()), 30'000);

  // A shorter idle timeout set on n2 shortens the TTL at once.
  v1::UpdateRequest shorter;
  shorter.set_id(idle_only.id());
  shorter.set_max_idle_s(10);
  Result<v1::Session> updated = c2_->Update(shorter);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->max_idle_s(), 10u);
  ttl = Pttl(idle_only.id());
  EXPECT_LE(ttl, 12'500);
  EXPECT_GT(ttl, 0);
}

TEST_F(RedisModeTest, ThePrincipalSetHasNoStaleEntryAfterInvalidateRotateAndExpiry) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  Result<std::unique_ptr<WatchStream>> watch = c1_->Watch({});
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();

  const v1::Session kept = CreateOk(*c1_, NewSession("alice"));
  const v1::Session invalidated = CreateOk(*c1_, NewSession("alice"));
  const v1::Session rotated = CreateOk(*c1_, NewSession("alice"));
  const v1::Session expiring = CreateOk(*c1_, NewSession("alice", /*max_idle_s=*/1));
  EXPECT_EQ(PrincipalSet("alice").size(), 4u);

  ASSERT_TRUE(c2_->Invalidate(invalidated.id()).ok());
  Result<v1::Session> new_id = c2_->RotateId(rotated.id());
  ASSERT_TRUE(new_id.ok()) << new_id.status().ToString();
  const std::vector<std::string> live = Sorted({kept.id(), new_id->id()});

  // Invalidate and rotate fix the set in the same script that changes the session.
  std::vector<std::string> members;
  for (const auto& [id, deadline] : PrincipalSet("alice")) members.push_back(id);
  EXPECT_EQ(Sorted(members), Sorted({kept.id(), new_id->id(), expiring.id()}));

  std::optional<v1::SessionEvent> expired = AwaitEvent(**watch, [&](const v1::SessionEvent& e) {
    return e.kind() == v1::SessionEvent::EXPIRED && e.id() == expiring.id();
  });
  ASSERT_TRUE(expired.has_value()) << "no EXPIRED event for the 1-second session within 10 s";

  // Redis cannot expire one member of a set, so the expired id may still be there, but scored
  // with its past deadline: every member that claims to be alive is.
  const int64_t now = NowMs();
  std::vector<std::string> claiming_alive;
  for (const auto& [id, deadline] : PrincipalSet("alice")) {
    if (deadline > now) claiming_alive.push_back(id);
  }
  EXPECT_EQ(Sorted(claiming_alive), live);

  // Both nodes answer exactly the live sessions, and the lookup clears the dead member out.
  for (Client* client : {c1_.get(), c2_.get()}) {
    Result<std::vector<v1::Session>> found = client->FindByPrincipal("alice");
    ASSERT_TRUE(found.ok()) << found.status().ToString();
    EXPECT_EQ(SortedIds(*found), live);
  }
  members.clear();
  for (const auto& [id, deadline] : PrincipalSet("alice")) members.push_back(id);
  EXPECT_EQ(Sorted(members), live);

  // The set goes with its last session.
  ASSERT_TRUE(c2_->Invalidate(kept.id()).ok());
  ASSERT_TRUE(c1_->Invalidate(new_id->id()).ok());
  Result<RedisReply> exists = inspector_->Query({"EXISTS", layout_.PrincipalKey("alice")});
  ASSERT_TRUE(exists.ok());
  EXPECT_EQ(exists->integer(), 0);
}

TEST_F(RedisModeTest, ConcurrentVersionedUpdatesThroughTwoNodesGiveOneOkAndOneConflict) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const v1::Session s = CreateOk(*c1_, NewSession());
    std::optional<Result<v1::Session>> r1, r2;
    std::latch start(2);
    std::thread t1([&] {
      start.arrive_and_wait();
      r1.emplace(c1_->Update(SetAttribute(s.id(), "cart", "from n1", /*expected_version=*/1)));
    });
    std::thread t2([&] {
      start.arrive_and_wait();
      r2.emplace(c2_->Update(SetAttribute(s.id(), "cart", "from n2", /*expected_version=*/1)));
    });
    t1.join();
    t2.join();
    ASSERT_NE(r1->ok(), r2->ok()) << r1->status().ToString() << " / " << r2->status().ToString();
    const Result<v1::Session>& winner = r1->ok() ? *r1 : *r2;
    const Result<v1::Session>& loser = r1->ok() ? *r2 : *r1;
    EXPECT_EQ(loser.status().code(), v1::CONFLICT) << loser.status().ToString();
    EXPECT_FALSE(loser.status().message().empty());
    EXPECT_EQ(winner->version(), 2u);
    for (Client* client : {c1_.get(), c2_.get()}) {
      Result<v1::Session> got = client->Get(s.id());
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      EXPECT_EQ(got->version(), 2u);
      EXPECT_EQ(got->attributes().at("cart"), winner->attributes().at("cart"));
    }
  }
}

TEST_F(RedisModeTest, AWatchOnOneNodeSeesTheOtherNodesChangesAndAnExpiry) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  Result<std::unique_ptr<WatchStream>> all = c2_->Watch({});
  ASSERT_TRUE(all.ok()) << all.status().ToString();

  const v1::Session s = CreateOk(*c1_, NewSession());
  Result<v1::SessionEvent> created = (*all)->Next(10s);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->kind(), v1::SessionEvent::CREATED);
  EXPECT_EQ(created->id(), s.id());
  EXPECT_EQ(created->version(), 1u);
  EXPECT_EQ(created->origin_node(), "n1");

  // Events cross nodes through Redis pub/sub after the change was acknowledged, so the watch on
  // the id starts only once n2 has seen the creation.
  Result<std::unique_ptr<WatchStream>> by_id = c2_->Watch({s.id()});
  ASSERT_TRUE(by_id.ok()) << by_id.status().ToString();
  ASSERT_TRUE(c1_->Update(SetAttribute(s.id(), "cart", "1 item")).ok());
  for (WatchStream* stream : {by_id->get(), all->get()}) {
    Result<v1::SessionEvent> changed = stream->Next(10s);
    ASSERT_TRUE(changed.ok()) << changed.status().ToString();
    EXPECT_EQ(changed->kind(), v1::SessionEvent::CHANGED);
    EXPECT_EQ(changed->id(), s.id());
    EXPECT_EQ(changed->version(), 2u);
    EXPECT_EQ(changed->origin_node(), "n1");
    EXPECT_GT(changed->at_ms(), 0);
  }

  // Nobody expires this one: Redis does, and n2 hears it from Redis's keyspace notifications.
  const v1::Session short_lived = CreateOk(*c1_, NewSession("", /*max_idle_s=*/1));
  std::optional<v1::SessionEvent> expired = AwaitEvent(**all, [&](const v1::SessionEvent& e) {
    return e.kind() == v1::SessionEvent::EXPIRED && e.id() == short_lived.id();
  });
  ASSERT_TRUE(expired.has_value()) << "no EXPIRED event on n2 within 10 s";
  EXPECT_EQ(c2_->Get(short_lived.id()).status().code(), v1::NOT_FOUND);

  // The watch on the first id saw none of the other session's events.
  ASSERT_TRUE(c1_->Invalidate(s.id()).ok());
  Result<v1::SessionEvent> last = (*by_id)->Next(10s);
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  EXPECT_EQ(last->kind(), v1::SessionEvent::INVALIDATED);
  EXPECT_EQ(last->id(), s.id());
}

// Redis killed under two live daemons: every request that needs Redis answers UNAVAILABLE with a
// sentence, the daemons stay up, /readyz says 503 so a load balancer can route elsewhere, and
// when Redis is back on its port the same daemons and the same client connections carry on.
// Ping stays OK throughout: it is answered by the daemon itself and means "sessiond is alive",
// which it is; readiness is /readyz's job.
TEST_F(RedisModeTest, RedisFaultOutageAnswersUnavailableAndRecoversWithoutRestartingSessiond) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  const v1::Session before = CreateOk(*c1_, NewSession("dora"));
  Result<std::unique_ptr<WatchStream>> watch = c2_->Watch({});
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();

  redis_.Kill9();
  ASSERT_TRUE(ReadyzBecomes(n1_, 503));
  ASSERT_TRUE(ReadyzBecomes(n2_, 503));

  auto expect_unavailable = [](const Status& status, const char* what) {
    EXPECT_EQ(status.code(), v1::UNAVAILABLE) << what << ": " << status.ToString();
    EXPECT_NE(status.message().find("Redis"), std::string::npos)
        << what << ": " << status.message();
  };
  for (Client* client : {c1_.get(), c2_.get()}) {
    expect_unavailable(client->Create(NewSession()).status(), "create");
    expect_unavailable(client->Get(before.id()).status(), "get");
    expect_unavailable(client->Get(before.id(), /*touch=*/true).status(), "touch");
    expect_unavailable(client->Update(SetAttribute(before.id(), "cart", "x")).status(), "update");
    expect_unavailable(client->Invalidate(before.id()), "invalidate");
    expect_unavailable(client->RotateId(before.id()).status(), "rotate");
    expect_unavailable(client->FindByPrincipal("dora").status(), "find");
    EXPECT_TRUE(client->Ping().ok());
  }
  for (DaemonProcess* node : {&n1_, &n2_}) {
    EXPECT_EQ(node->WaitExit(0ms), -1) << node->LogTail();
    Result<HttpReply> health = node->HttpGet("/healthz");
    ASSERT_TRUE(health.ok()) << health.status().ToString();
    EXPECT_EQ(health->status, 200);
  }

  ASSERT_TRUE(redis_.Restart());
  ASSERT_TRUE(ReadyzBecomes(n1_, 200)) << n1_.LogTail();
  ASSERT_TRUE(ReadyzBecomes(n2_, 200)) << n2_.LogTail();
  EXPECT_EQ(c2_->Get(before.id()).status().code(), v1::NOT_FOUND);  // Redis came back empty
  const v1::Session after = CreateOk(*c1_, NewSession("dora"));
  Result<v1::Session> updated = c2_->Update(SetAttribute(after.id(), "cart", "recovered"));
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  Result<v1::Session> read_back = c1_->Get(after.id());
  ASSERT_TRUE(read_back.ok()) << read_back.status().ToString();
  EXPECT_EQ(read_back->attributes().at("cart"), "recovered");
  Result<std::vector<v1::Session>> found = c2_->FindByPrincipal("dora");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(SortedIds(*found), std::vector<std::string>{after.id()});

  // The watch made before the outage still delivers: n2 resubscribed by itself.
  std::optional<v1::SessionEvent> changed = AwaitEvent(**watch, [&](const v1::SessionEvent& e) {
    return e.kind() == v1::SessionEvent::CHANGED && e.id() == after.id();
  });
  EXPECT_TRUE(changed.has_value()) << "the watch from before the outage saw no event after it";
  EXPECT_EQ(n1_.WaitExit(0ms), -1);
  EXPECT_EQ(n2_.WaitExit(0ms), -1);
}

// With the near cache on both nodes, a read through one node right after an update acknowledged
// by the other never returns the older value: the cache is kept honest by CLIENT TRACKING and
// checked before it serves.
TEST_F(RedisModeTest, TheNearCacheNeverServesAValueOlderThanAnUpdateAcknowledgedElsewhere) {
  ASSERT_NO_FATAL_FAILURE(StartBoth({"--redis-near-cache"}));
  const v1::Session s = CreateOk(*c1_, NewSession());
  for (int i = 1; i <= 200; ++i) {
    SCOPED_TRACE("update " + std::to_string(i));
    Client& writer = i % 2 == 1 ? *c1_ : *c2_;
    Client& reader = i % 2 == 1 ? *c2_ : *c1_;
    const std::string value = "v" + std::to_string(i);
    Result<v1::Session> updated = writer.Update(SetAttribute(s.id(), "cart", value));
    ASSERT_TRUE(updated.ok()) << updated.status().ToString();
    ASSERT_EQ(updated->version(), static_cast<uint64_t>(i + 1));
    // Twice: the first read may fill the cache, the second may be served from it.
    for (int read = 0; read < 2; ++read) {
      Result<v1::Session> got = reader.Get(s.id());
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      ASSERT_EQ(got->version(), updated->version());
      ASSERT_EQ(got->attributes().at("cart"), value);
    }
  }
  // Otherwise this test proved nothing about the cache.
  uint64_t hits = 0;
  for (Client* client : {c1_.get(), c2_.get()}) {
    Result<v1::NodeStats> stats = client->Stats();
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    ASSERT_TRUE(stats->counters().contains("near_cache_hits"))
        << "--redis-near-cache did not turn the near cache on";
    hits += stats->counters().at("near_cache_hits");
  }
  EXPECT_GT(hits, 0u);
}

}  // namespace
}  // namespace sessiond::test
