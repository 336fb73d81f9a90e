#include "replication/redis/redis_manager.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "replication/event_hub.h"
#include "replication/redis/redis_near_cache.h"
#include "replication/redis/redis_pool.h"
#include "replication/redis/redis_session_layout.h"
#include "replication/redis/redis_session_scripts.h"
#include "replication/redis/redis_subscriber.h"
#include "replication/redis/redis_tls_context.h"
#include "replication/session_counters.h"
#include "replication/session_id.h"
#include "replication/session_key.h"
#include "replication/session_store.h"

namespace sessiond {
namespace {

// What expiry events this node reports as their origin: Redis expired the session, not a node.
constexpr std::string_view kRedisOrigin = "redis";

// The request checks every mode makes, with the same statuses and sentences as SessionStore's
// (which keeps its own private). Redis enforces the attribute count itself, in the update
// script, since only it knows how many attributes a session holds.
class RequestChecks {
 public:
  explicit RequestChecks(const SessionLimits& limits) : limits_(limits) {}

  Status Create(const v1::CreateRequest& request) const {
    if (Status s = Seconds("max_idle_s", request.max_idle_s()); !s.ok()) return s;
    if (Status s = Seconds("max_lifetime_s", request.max_lifetime_s()); !s.ok()) return s;
    if (Status s = Principal(request.principal()); !s.ok()) return s;
    for (const auto& [name, value] : request.attributes()) {
      if (Status s = Attribute(name, value); !s.ok()) return s;
    }
    return AttributeCount(request.attributes().size());
  }

  Status Update(const v1::UpdateRequest& request) const {
    for (const auto& [name, value] : request.set()) {
      if (Status s = Attribute(name, value); !s.ok()) return s;
    }
    for (const std::string& name : request.remove()) {
      if (Status s = Name(name); !s.ok()) return s;
      if (request.set().contains(name)) {
        return InvalidArgument(fmt::format(
            "attribute '{}' is both set and removed in one update: do one or the other", name));
      }
    }
    if (request.has_principal()) {
      if (Status s = Principal(request.principal()); !s.ok()) return s;
    }
    if (request.has_max_idle_s()) {
      if (request.max_idle_s() == 0) {
        return InvalidArgument(
            "max_idle_s must be at least 1 second: to end a session now, invalidate it");
      }
      if (Status s = Seconds("max_idle_s", request.max_idle_s()); !s.ok()) return s;
    }
    return Status::Ok();
  }

  Status AttributeCount(size_t count) const {
    if (count > limits_.max_attributes) {
      return ResourceExhausted(
          fmt::format("the session would hold {} attributes, over this node's limit of {}: remove "
                      "attributes no longer needed or group related values under one name",
                      count, limits_.max_attributes));
    }
    return Status::Ok();
  }

 private:
  Status Name(std::string_view name) const {
    if (name.empty()) {
      return InvalidArgument("attribute names must not be empty: give every attribute a name");
    }
    if (name.size() > limits_.max_name_bytes) {
      return InvalidArgument(fmt::format(
          "an attribute name of {} bytes is over this node's limit of {} bytes: use a shorter "
          "name",
          name.size(), limits_.max_name_bytes));
    }
    return Status::Ok();
  }

  Status Attribute(std::string_view name, std::string_view value) const {
    if (Status s = Name(name); !s.ok()) return s;
    if (value.size() > limits_.max_value_bytes) {
      return TooLarge(fmt::format(
          "attribute '{}' is {} bytes, over this node's limit of {} bytes: keep large data "
          "outside the session, or raise the node's value size limit",
          name, value.size(), limits_.max_value_bytes));
    }
    return Status::Ok();
  }

  Status Principal(std::string_view principal) const {
    if (principal.size() > limits_.max_principal_bytes) {
      return InvalidArgument(fmt::format(
          "a principal of {} bytes is over this node's limit of {} bytes: identify the user by "
          "a shorter key, such as a user id",
          principal.size(), limits_.max_principal_bytes));
    }
    return Status::Ok();
  }

  Status Seconds(std::string_view field, uint32_t seconds) const {
    if (seconds > limits_.max_idle_limit_s) {
      return InvalidArgument(fmt::format(
          "{} of {} seconds is over this node's limit of {} seconds: ask for a shorter timeout",
          field, seconds, limits_.max_idle_limit_s));
    }
    return Status::Ok();
  }

  const SessionLimits& limits_;
};

Status RepeatedIdError() {
  return Internal(
      "the session id generator repeated an id twice in a row, so this node's random source is "
      "broken: restart the node and report this as a bug");
}

// The keyspace notification flags sessiond needs (E: keyevent channels, x: expired, e:
// evicted) that `flags` lacks. 'A' stands for every class, x and e included.
std::string MissingKeyspaceFlags(std::string_view flags) {
  const bool all = flags.find('A') != std::string_view::npos;
  std::string missing;
  if (flags.find('E') == std::string_view::npos) missing += 'E';
  if (!all && flags.find('x') == std::string_view::npos) missing += 'x';
  if (!all && flags.find('e') == std::string_view::npos) missing += 'e';
  return missing;
}

// The first element of a script's reply: its status word, or "" when the reply has none.
std::string_view StatusWord(const RedisReply& reply) {
  if (!reply.is_array() || reply.elements().empty() || !reply.elements()[0].is_text()) return "";
  return reply.elements()[0].text();
}

}  // namespace

class RedisManager::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor executor, ManagerOptions options, RedisOptions redis)
      : executor_(std::move(executor)),
        options_(std::move(options)),
        redis_(std::move(redis)),
        checks_(options_.limits),
        layout_(redis_.key_prefix, redis_.url.db),
        tls_(MakeTls(redis_, &tls_error_)),
        pool_(executor_, redis_.url, PoolOptions(redis_.connections, "pool")),
        cache_(redis_.near_cache_max_entries),
        subscribed_signal_(executor_),
        unwatch_timer_(executor_) {}

  asio::awaitable<Status> Start() {
    if (started_) co_return Status::Ok();
    if (!tls_error_.ok()) co_return tls_error_;
    started_ = true;
    std::weak_ptr<Impl> weak = weak_from_this();

    pool_.SetSetupCommands([weak]() -> Result<std::vector<RedisCommand>> {
      std::shared_ptr<Impl> self = weak.lock();
      if (!self) return Unavailable("sessiond is shutting down");
      return self->scripts_.LoadAll();
    });

    // The events channel is subscribed to only while this node has watches (see Watch).
    std::vector<std::string> channels{layout_.expired_channel(), layout_.evicted_channel()};
    if (near_cache_enabled()) channels.emplace_back(RedisSessionLayout::kInvalidateChannel);
    RedisSubscriber::Handlers handlers;
    handlers.prepare = [weak](std::shared_ptr<RedisConnection> c) -> asio::awaitable<void> {
      if (std::shared_ptr<Impl> self = weak.lock()) co_await self->ConfigureKeyspaceEvents(c);
    };
    handlers.on_subscribed = [weak](int64_t client_id) {
      if (std::shared_ptr<Impl> self = weak.lock()) self->OnSubscribed(client_id);
    };
    handlers.on_lost = [weak](const Status& reason) {
      if (std::shared_ptr<Impl> self = weak.lock()) self->OnSubscriptionLost(reason);
    };
    handlers.on_message = [weak](const std::string& channel, const RedisReply& payload) {
      if (std::shared_ptr<Impl> self = weak.lock()) self->OnMessage(channel, payload);
    };
    RedisSubscriberOptions subscriber_options;
    subscriber_options.connection = ConnectionOptions("events");
    subscriber_options.backoff_initial = redis_.backoff_initial;
    subscriber_options.backoff_max = redis_.backoff_max;
    subscriber_options.ping_interval = redis_.ping_interval;
    subscriber_ = std::make_unique<RedisSubscriber>(executor_, redis_.url, subscriber_options,
                                                    std::move(channels), std::move(handlers));

    if (near_cache_enabled()) {
      // Cache fills read on their own connections, whose reads Redis tracks and whose
      // invalidations it sends to the subscription connection.
      tracked_ = std::make_unique<RedisPool>(executor_, redis_.url, PoolOptions(1, "tracked"));
      tracked_->SetSetupCommands([weak]() -> Result<std::vector<RedisCommand>> {
        std::shared_ptr<Impl> self = weak.lock();
        if (!self) return Unavailable("sessiond is shutting down");
        const int64_t redirect = self->subscriber_->client_id();
        if (redirect == 0) {
          return Unavailable("the near cache waits for its invalidation subscription");
        }
        return std::vector<RedisCommand>{
            RedisCommand{"CLIENT", "TRACKING", "on", "REDIRECT", std::to_string(redirect)}};
      });
      tracked_->SetClosedHandler([weak](const Status&) {
        // Its tracking died with it: invalidations for what it read will never come.
        if (std::shared_ptr<Impl> self = weak.lock()) self->cache_.Flush();
      });
    }

    pool_.Start();
    subscriber_->Start();
    if (tracked_) tracked_->Start();

    // Give Redis the connect timeout to answer, so a node whose Redis is up is ready when
    // Start returns; one whose Redis is down starts anyway and serves once it is back.
    if (co_await pool_.WaitConnected(redis_.connect_timeout)) {
      spdlog::info("redis manager of node {} connected to Redis at {} ({} connections)",
                   options_.node_id, redis_.url.Describe(), pool_.connected());
      co_await WaitSubscribed(redis_.connect_timeout);
    } else {
      spdlog::warn(
          "redis manager of node {} cannot reach Redis at {} yet ({}); it answers "
          "UNAVAILABLE until Redis is back",
          options_.node_id, redis_.url.Describe(), pool_.last_error().message());
    }
    co_return Status::Ok();
  }

  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    subscribed_signal_.cancel();
    unwatch_timer_.cancel();
    pool_.Stop();
    if (subscriber_) subscriber_->Stop();
    if (tracked_) tracked_->Stop();
    cache_.Flush();
  }

  asio::awaitable<Result<v1::Session>> Create(v1::CreateRequest request) {
    auto self = shared_from_this();
    if (stopped_) co_return StoppedStatus();
    if (Status s = checks_.Create(request); !s.ok()) co_return s;
    const uint32_t idle =
        request.max_idle_s() == 0 ? options_.limits.default_max_idle_s : request.max_idle_s();
    const std::string idle_text = std::to_string(idle);
    const std::string lifetime_text = std::to_string(request.max_lifetime_s());

    std::vector<std::string> fields;
    fields.reserve(request.attributes().size());
    std::vector<std::string_view> args{layout_.prefix(), options_.node_id, "",
                                       idle_text,        lifetime_text,    request.principal()};
    for (const auto& [name, value] : request.attributes()) {
      fields.push_back(RedisSessionLayout::AttributeField(name));
      args.push_back(fields.back());
      args.push_back(value);
    }
    // A fresh id that is taken: 128 random bits make one repeat astronomically unlikely, so
    // retry once, and a second repeat means the generator is broken.
    for (int attempt = 0; attempt < 2; ++attempt) {
      const std::string id = options_.ids->NewId();
      args[2] = id;
      const std::string key = layout_.SessionKey(id);
      const std::vector<std::string_view> keys{key};
      Result<RedisReply> reply = co_await RunScript(scripts_.create(), keys, args);
      if (!reply.ok()) co_return reply.status();
      const std::string_view word = StatusWord(*reply);
      if (word == "EXISTS") continue;
      if (word != "OK" || reply->elements().size() != 2) {
        co_return UnexpectedReply(scripts_.create(), *reply);
      }
      v1::Session session;
      session.set_id(id);
      session.set_created_ms(reply->elements()[1].integer());
      session.set_last_access_ms(session.created_ms());
      session.set_max_idle_s(idle);
      session.set_max_lifetime_s(request.max_lifetime_s());
      session.set_principal(request.principal());
      session.set_version(1);
      *session.mutable_attributes() = request.attributes();
      ++counted_.created;
      co_return session;
    }
    co_return RepeatedIdError();
  }

  asio::awaitable<Result<v1::Session>> Get(v1::GetRequest request) {
    auto self = shared_from_this();
    if (stopped_) co_return StoppedStatus();
    const std::string& id = request.id();
    if (!SessionKey::FromText(id)) co_return SessionStore::NotFoundError(id);
    if (NearCacheActive()) co_return co_await GetThroughCache(id, request.touch());
    Result<Read> read = co_await ReadSession(pool_, id, request.touch());
    if (!read.ok()) co_return read.status();
    if (request.touch() && read->touch_in_ms <= 0) {
      co_return co_await Touch(std::move(read->session));
    }
    co_return std::move(read->session);
  }

  asio::awaitable<Result<v1::Session>> Update(v1::UpdateRequest request) {
    auto self = shared_from_this();
    if (stopped_) co_return StoppedStatus();
    if (Status s = checks_.Update(request); !s.ok()) co_return s;
    const std::string& id = request.id();
    if (!SessionKey::FromText(id)) co_return SessionStore::NotFoundError(id);

    const std::string expected = std::to_string(request.expected_version());
    const std::string idle = request.has_max_idle_s() ? std::to_string(request.max_idle_s()) : "";
    const std::string max_attributes = std::to_string(options_.limits.max_attributes);
    const std::string n_set = std::to_string(request.set().size());
    std::vector<std::string> fields;
    fields.reserve(request.set().size() + request.remove().size());
    std::vector<std::string_view> args{layout_.prefix(),
                                       options_.node_id,
                                       id,
                                       expected,
                                       request.touch() ? "1" : "0",
                                       request.has_principal() ? "1" : "0",
                                       request.principal(),
                                       idle,
                                       max_attributes,
                                       n_set};
    for (const auto& [name, value] : request.set()) {
      fields.push_back(RedisSessionLayout::AttributeField(name));
      args.push_back(fields.back());
      args.push_back(value);
    }
    for (const std::string& name : request.remove()) {
      fields.push_back(RedisSessionLayout::AttributeField(name));
      args.push_back(fields.back());
    }
    cache_.Invalidate(id);
    const std::string key = layout_.SessionKey(id);
    const std::vector<std::string_view> keys{key};
    Result<RedisReply> reply = co_await RunScript(scripts_.update(), keys, args);
    if (!reply.ok()) co_return reply.status();
    const std::string_view word = StatusWord(*reply);
    const auto& parts = reply->elements();
    if (word == "NOT_FOUND") co_return SessionStore::NotFoundError(id);
    if (word == "CONFLICT" && parts.size() == 2) {
      ++counted_.update_conflicts;
      co_return Conflict(fmt::format(
          "session {} is at version {}, not the expected {}: another request changed it; read "
          "it again and redo the update",
          LogTag(id), parts[1].integer(), request.expected_version()));
    }
    if (word == "TOO_MANY" && parts.size() == 2) {
      co_return checks_.AttributeCount(static_cast<size_t>(parts[1].integer()));
    }
    if (word != "OK" || parts.size() != 5 || !parts[2].is_integer() || !parts[3].is_integer()) {
      co_return UnexpectedReply(scripts_.update(), *reply);
    }
    if (parts[1].integer() != 0) ++counted_.updated;
    // The reply holds the hash before the update: apply the request to it, as the script did.
    Result<v1::Session> session = RedisSessionLayout::DecodeSession(id, parts[4]);
    if (!session.ok()) co_return session;
    auto& attributes = *session->mutable_attributes();
    for (const auto& [name, value] : request.set()) attributes[name] = value;
    for (const std::string& name : request.remove()) attributes.erase(name);
    if (request.has_principal()) session->set_principal(request.principal());
    if (request.has_max_idle_s()) session->set_max_idle_s(request.max_idle_s());
    session->set_version(static_cast<uint64_t>(parts[2].integer()));
    session->set_last_access_ms(parts[3].integer());
    co_return session;
  }

  asio::awaitable<Status> Invalidate(v1::InvalidateRequest request) {
    auto self = shared_from_this();
    if (stopped_) co_return StoppedStatus();
    const std::string& id = request.id();
    if (!SessionKey::FromText(id)) co_return SessionStore::NotFoundError(id);
    cache_.Invalidate(id);
    const std::string key = layout_.SessionKey(id);
    const std::vector<std::string_view> keys{key};
    const std::vector<std::string_view> args{layout_.prefix(), options_.node_id, id};
    Result<RedisReply> reply = co_await RunScript(scripts_.invalidate(), keys, args);
    if (!reply.ok()) co_return reply.status();
    const std::string_view word = StatusWord(*reply);
    if (word == "NOT_FOUND") co_return SessionStore::NotFoundError(id);
    if (word != "OK") co_return UnexpectedReply(scripts_.invalidate(), *reply);
    ++counted_.invalidated;
    co_return Status::Ok();
  }

  asio::awaitable<Result<v1::Session>> RotateId(v1::RotateIdRequest request) {
    auto self = shared_from_this();
    if (stopped_) co_return StoppedStatus();
    const std::string& id = request.id();
    if (!SessionKey::FromText(id)) co_return SessionStore::NotFoundError(id);
    cache_.Invalidate(id);
    const std::string old_key = layout_.SessionKey(id);
    for (int attempt = 0; attempt < 2; ++attempt) {
      const std::string new_id = options_.ids->NewId();
      const std::string new_key = layout_.SessionKey(new_id);
      const std::vector<std::string_view> keys{old_key, new_key};
      const std::vector<std::string_view> args{layout_.prefix(), options_.node_id, id, new_id};
      Result<RedisReply> reply = co_await RunScript(scripts_.rotate(), keys, args);
      if (!reply.ok()) co_return reply.status();
      const std::string_view word = StatusWord(*reply);
      if (word == "EXISTS") continue;
      if (word == "NOT_FOUND") co_return SessionStore::NotFoundError(id);
      if (word != "OK" || reply->elements().size() != 2) {
        co_return UnexpectedReply(scripts_.rotate(), *reply);
      }
      ++counted_.rotated;
      co_return RedisSessionLayout::DecodeSession(new_id, reply->elements()[1]);
    }
    co_return RepeatedIdError();
  }

  asio::awaitable<Result<v1::SessionList>> FindByPrincipal(v1::FindByPrincipalRequest request) {
    auto self = shared_from_this();
    if (stopped_) co_return StoppedStatus();
    if (request.principal().empty()) {
      co_return InvalidArgument(
          "find_by_principal needs a principal: name the user whose sessions you want");
    }
    const std::vector<std::string_view> args{layout_.prefix(), request.principal()};
    const std::vector<std::string_view> no_keys;
    Result<RedisReply> reply = co_await RunScript(scripts_.find(), no_keys, args);
    if (!reply.ok()) co_return reply.status();
    if (!reply->is_array() || reply->elements().size() % 2 != 0) {
      co_return UnexpectedReply(scripts_.find(), *reply);
    }
    std::vector<v1::Session> found;
    const auto& parts = reply->elements();
    for (size_t i = 0; i + 1 < parts.size(); i += 2) {
      Result<v1::Session> session =
          RedisSessionLayout::DecodeSession(parts[i].text(), parts[i + 1]);
      if (!session.ok()) co_return session.status();
      found.push_back(std::move(session).value());
    }
    std::sort(found.begin(), found.end(), [](const v1::Session& a, const v1::Session& b) {
      return a.created_ms() < b.created_ms();
    });
    v1::SessionList list;
    for (v1::Session& s : found) *list.add_sessions() = std::move(s);
    co_return list;
  }

  // Events are published on a channel every change script publishes to, and Redis writes each
  // message to every subscribed connection: so a node subscribes only while it has watches, and
  // a change nobody watches costs Redis no writes. PrepareWatch subscribes before the watch is
  // made and answered; a node keeps the subscription for unwatch_grace after its last watch.
  asio::awaitable<void> PrepareWatch() {
    auto self = shared_from_this();
    if (!subscriber_ || stopped_) co_return;
    co_await subscriber_->Want(layout_.events_channel());
    if (watches_ == 0) ArmUnwatch();  // in case no watch follows
  }

  std::unique_ptr<WatchHandle> Watch(std::vector<std::string> ids, EventSink sink) {
    if (subscriber_ && !stopped_ && !subscriber_->SubscribedTo(layout_.events_channel())) {
      // Not prepared (a caller inside this process): subscribe now, live shortly.
      asio::co_spawn(executor_, subscriber_->Want(layout_.events_channel()), asio::detached);
    }
    ++watches_;
    return std::make_unique<CountedWatch>(hub_.Subscribe(std::move(ids), std::move(sink)),
                                          weak_from_this());
  }

  v1::NodeStats Stats() const {
    v1::NodeStats stats;
    stats.set_node_id(options_.node_id);
    stats.set_mode("redis");
    stats.set_sessions(cache_.size());
    counted_.AddTo(stats);
    auto& c = *stats.mutable_counters();
    c["watchers"] = hub_.watch_count();
    c["redis_connections_up"] = pool_.connected();
    c["redis_connects"] = pool_.connects();
    c["redis_subscriptions"] = subscriber_ ? subscriber_->subscriptions() : 0;
    c["redis_events_received"] = events_received_;
    c["redis_script_reloads"] = script_reloads_;
    c["redis_touches_written"] = touches_written_;
    if (near_cache_enabled()) {
      c["near_cache_entries"] = cache_.size();
      c["near_cache_hits"] = near_cache_hits_;
      c["near_cache_misses"] = near_cache_misses_;
      if (subscriber_) c["near_cache_barrier_pings"] = subscriber_->barrier_pings();
      c["near_cache_invalidations"] = cache_.invalidations();
      c["near_cache_flushes"] = cache_.flushes();
    }
    return stats;
  }

  Readiness Ready() const {
    if (!started_) return Readiness{false, "not started"};
    if (stopped_) return Readiness{false, "stopping"};
    if (pool_.connected() == 0) return Readiness{false, pool_.UnreachableStatus().message()};
    if (!subscriber_->subscribed()) {
      return Readiness{
          false, fmt::format("connected to Redis at {}, but its event subscription is down ({}); "
                             "watches would miss events until it is back, which sessiond is "
                             "retrying on its own",
                             redis_.url.Describe(), subscriber_->last_error().message())};
    }
    std::string detail = fmt::format("serving from Redis at {}, {} of {} connections up",
                                     redis_.url.Describe(), pool_.connected(), redis_.connections);
    detail += keyspace_problem_.empty() ? "; expiry events on" : "; " + keyspace_problem_;
    if (near_cache_enabled()) {
      detail += NearCacheActive() ? "; near cache on"
                                  : "; near cache off until its tracking "
                                    "connection is up";
    }
    return Readiness{true, detail};
  }

 private:
  bool near_cache_enabled() const { return redis_.near_cache != RedisNearCacheMode::kOff; }

  // The cache may serve and fill only while both its invalidation subscription and a tracked
  // connection are up; otherwise an invalidation could be lost.
  bool NearCacheActive() const {
    return near_cache_enabled() && !stopped_ && subscriber_ && subscriber_->subscribed() &&
           tracked_ && tracked_->connected() > 0;
  }

  // The TLS context of a rediss:// URL, shared by every connection; null for redis://, or when
  // it cannot be made (then *error says why and Start() refuses).
  static std::shared_ptr<RedisTlsContext> MakeTls(const RedisOptions& redis, Status* error) {
    if (!redis.url.tls) return nullptr;
    Result<std::shared_ptr<RedisTlsContext>> made = RedisTlsContext::Create(redis.tls);
    if (!made.ok()) {
      *error = made.status();
      return nullptr;
    }
    return std::move(made).value();
  }

  RedisConnectionOptions ConnectionOptions(std::string_view role) const {
    RedisConnectionOptions o;
    o.tls = tls_;
    o.connect_timeout = redis_.connect_timeout;
    o.command_timeout = redis_.command_timeout;
    o.client_name = fmt::format("sessiond:{}:{}", options_.node_id, role);
    // CLIENT SETNAME allows no spaces or newlines; node ids rarely have any, but be safe.
    std::replace_if(
        o.client_name.begin(), o.client_name.end(), [](char ch) { return ch <= ' ' || ch > '~'; },
        '_');
    return o;
  }

  RedisPoolOptions PoolOptions(size_t connections, std::string_view role) const {
    RedisPoolOptions o;
    o.connections = std::max<size_t>(1, connections);
    // One connection carries everything, so requests in flight together travel as one batch
    // (one read and one write in Redis for all of them); the others stand by.
    o.use = RedisPoolOptions::Use::kFirstUp;
    o.connection = ConnectionOptions(role);
    o.backoff_initial = redis_.backoff_initial;
    o.backoff_max = redis_.backoff_max;
    return o;
  }

  Status StoppedStatus() const {
    return Unavailable("this sessiond node is shutting down; send the request to another node");
  }

  Status UnexpectedReply(const RedisScript& script, const RedisReply& reply) const {
    return Internal(fmt::format(
        "Redis answered {} with {}, which this sessiond does not understand: another program "
        "may be using sessiond's keys or scripts; report this as a bug",
        script.name(), reply.Describe().substr(0, 200)));
  }

  // The status for an error reply to a command sessiond sent.
  Status RedisError(std::string_view what, const RedisReply& reply) const {
    const std::string where = redis_.url.Describe();
    if (reply.IsErrorCode("OOM")) {
      return ResourceExhausted(fmt::format(
          "Redis at {} is out of memory (maxmemory) and refused {}: invalidate sessions no "
          "longer needed, shorten idle timeouts, or give Redis more memory",
          where, what));
    }
    if (reply.IsErrorCode("LOADING") || reply.IsErrorCode("BUSY") ||
        reply.IsErrorCode("READONLY") || reply.IsErrorCode("MASTERDOWN") ||
        reply.IsErrorCode("TRYAGAIN") || reply.IsErrorCode("CLUSTERDOWN")) {
      return Unavailable(fmt::format("Redis at {} cannot serve {} right now ({}); retry shortly",
                                     where, what, reply.text()));
    }
    if (reply.IsErrorCode("NOPERM") || reply.IsErrorCode("NOAUTH")) {
      return Unavailable(fmt::format(
          "Redis at {} refused {} ({}): give sessiond's Redis user the right to run scripts, "
          "pub/sub and HGETALL on its keys",
          where, what, reply.text()));
    }
    if (reply.IsErrorCode("WRONGTYPE")) {
      return Internal(fmt::format(
          "Redis at {} refused {} ({}): a key under sessiond's prefix '{}' is not one sessiond "
          "wrote; give sessiond a key prefix or database of its own",
          where, what, reply.text(), redis_.key_prefix));
    }
    return Internal(fmt::format("Redis at {} rejected {} ({}); report this as a bug", where, what,
                                reply.text()));
  }

  // One script call: EVALSHA, and after NOSCRIPT (Redis restarted or its scripts were flushed)
  // SCRIPT LOAD and EVALSHA again, pipelined. Error replies become statuses.
  asio::awaitable<Result<RedisReply>> RunScript(const RedisScript& script,
                                                const std::vector<std::string_view>& keys,
                                                const std::vector<std::string_view>& args) {
    RedisCommand call = script.Call(keys, args);
    Result<RedisReply> reply = co_await pool_.Execute(call);
    if (reply.ok() && reply->IsErrorCode("NOSCRIPT")) {
      ++script_reloads_;
      std::vector<RedisCommand> reload{script.Load(), std::move(call)};
      Result<std::vector<RedisReply>> replies = co_await pool_.ExecuteAll(std::move(reload));
      if (!replies.ok()) co_return replies.status();
      reply = std::move((*replies)[1]);
    }
    if (!reply.ok()) co_return reply.status();
    if (reply->is_error()) co_return RedisError(script.name(), *reply);
    co_return reply;
  }

  // A session as read, and for a read with touch, how long until its access time is due to be
  // written again (<= 0: now).
  struct Read {
    v1::Session session;
    int64_t touch_in_ms = 0;
  };

  // The milliseconds until a read of `s` should write its access time: the key's TTL `pttl_ms`
  // says how long ago the last write of it was (it set the TTL to the idle timeout plus one
  // touch window, capped by the lifetime), in Redis's time, whatever this node's clock says.
  static int64_t TouchInMs(const v1::Session& s, int64_t pttl_ms) {
    if (pttl_ms < 0) return 0;  // no TTL (-1): someone removed it; a touch puts it back
    const int64_t idle_ms = int64_t{s.max_idle_s()} * 1000;
    const int64_t window = idle_ms / RedisSessionScripts::kTouchDivisor;
    int64_t ttl_set = idle_ms + window;
    if (s.max_lifetime_s() > 0) {
      ttl_set = std::min(ttl_set,
                         s.created_ms() + int64_t{s.max_lifetime_s()} * 1000 - s.last_access_ms());
    }
    return window - (ttl_set - pttl_ms);
  }

  // HGETALL through `pool`, pipelined with PTTL when `with_ttl` (to fill touch_in_ms).
  asio::awaitable<Result<Read>> ReadSession(RedisPool& pool, const std::string& id, bool with_ttl) {
    const std::string key = layout_.SessionKey(id);
    std::vector<RedisCommand> commands;
    commands.push_back(RedisCommand{"HGETALL", key});
    if (with_ttl) commands.push_back(RedisCommand{"PTTL", key});
    Result<std::vector<RedisReply>> replies = co_await pool.ExecuteAll(std::move(commands));
    if (!replies.ok()) co_return replies.status();
    const RedisReply& fields = replies->front();
    if (fields.is_error()) co_return RedisError("a session read (HGETALL)", fields);
    if (!fields.is_array()) {
      co_return Internal("Redis answered HGETALL with " + fields.Describe().substr(0, 200) +
                         "; another program may be using sessiond's keys");
    }
    if (fields.elements().empty()) co_return SessionStore::NotFoundError(id);
    Result<v1::Session> session = RedisSessionLayout::DecodeSession(id, fields);
    if (!session.ok()) co_return session.status();
    Read read{std::move(session).value(), 0};
    if (with_ttl) {
      const RedisReply& ttl = replies->back();
      if (!ttl.is_integer()) co_return RedisError("a session read (PTTL)", ttl);
      read.touch_in_ms = TouchInMs(read.session, ttl.integer());
    }
    co_return read;
  }

  // Writes the access time of `read` (a session just read, whose touch is due) with the touch
  // script, and returns it with that access time.
  asio::awaitable<Result<v1::Session>> Touch(v1::Session read) {
    // Our own write: drop our copy now rather than when the invalidation arrives.
    cache_.Invalidate(read.id());
    ++touches_written_;
    const std::string key = layout_.SessionKey(read.id());
    const std::vector<std::string_view> keys{key};
    const std::vector<std::string_view> args{layout_.prefix(), read.id()};
    Result<RedisReply> reply = co_await RunScript(scripts_.touch(), keys, args);
    if (!reply.ok()) co_return reply.status();
    const std::string_view word = StatusWord(*reply);
    if (word == "NOT_FOUND") co_return SessionStore::NotFoundError(read.id());
    if (word != "OK" || reply->elements().size() != 2 || !reply->elements()[1].is_integer()) {
      co_return UnexpectedReply(scripts_.touch(), *reply);
    }
    read.set_last_access_ms(reply->elements()[1].integer());
    co_return read;
  }

  // A read through the near cache. A read with touch is served from the cache only while its
  // access time is not due to be written (the fill read the key's TTL to know when it is).
  asio::awaitable<Result<v1::Session>> GetThroughCache(const std::string& id, bool touch) {
    if (cache_.Find(id, options_.clock->NowMs(), touch) != nullptr) {
      bool current = true;
      if (redis_.near_cache == RedisNearCacheMode::kValidated) {
        // Behind this PING come every invalidation Redis sent before it: after it, the copy
        // is as new as any update acknowledged before this read began.
        current = (co_await subscriber_->Barrier()).ok();
      }
      if (current) {
        if (const v1::Session* cached = cache_.Find(id, options_.clock->NowMs(), touch)) {
          ++near_cache_hits_;
          co_return *cached;
        }
      }
    }
    ++near_cache_misses_;
    Result<Read> read = Unavailable("");
    if (!NearCacheActive()) {
      read = co_await ReadSession(pool_, id, touch);
    } else {
      const int64_t filled_at = options_.clock->NowMs();
      const uint64_t token = cache_.BeginFill(id);
      read = co_await ReadSession(*tracked_, id, /*with_ttl=*/true);
      if (read.ok()) {
        cache_.EndFill(id, token, read->session, filled_at + read->touch_in_ms);
      } else {
        cache_.AbandonFill(id, token);
        // The tracked connection failed, not necessarily Redis: the request pool may still
        // serve.
        if (read.status().code() == v1::UNAVAILABLE && pool_.connected() > 0) {
          read = co_await ReadSession(pool_, id, touch);
        }
      }
    }
    if (!read.ok()) co_return read.status();
    if (touch && read->touch_in_ms <= 0) co_return co_await Touch(std::move(read->session));
    co_return std::move(read->session);
  }

  // Returns once the event subscription is up (OnSubscribed wakes it), or after `timeout`.
  asio::awaitable<void> WaitSubscribed(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!subscriber_->subscribed() && !stopped_ && std::chrono::steady_clock::now() < deadline) {
      subscribed_signal_.expires_at(deadline);
      boost::system::error_code ec;
      co_await subscribed_signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  // Makes Redis send the keyspace notifications expiry events come from, where it may; records
  // (and logs once) why not where it may not.
  asio::awaitable<void> ConfigureKeyspaceEvents(std::shared_ptr<RedisConnection> connection) {
    auto self = shared_from_this();
    std::string problem;
    RedisCommand get{"CONFIG", "GET", "notify-keyspace-events"};
    Result<RedisReply> current = co_await connection->Execute(std::move(get));
    if (!current.ok()) co_return;  // the connection failed; the subscriber retries
    if (current->is_error() || !current->is_array() || current->elements().size() != 2) {
      problem = fmt::format(
          "expiry events unknown: Redis refused CONFIG GET notify-keyspace-events ({}), so "
          "watches see EXPIRED only if Redis's own configuration sets notify-keyspace-events to "
          "include Exe",
          current->is_error() ? current->text() : current->Describe());
    } else {
      const std::string flags = current->elements()[1].text();
      const std::string missing = MissingKeyspaceFlags(flags);
      if (!missing.empty() && !redis_.configure_keyspace_events) {
        problem = fmt::format(
            "expiry events off: Redis's notify-keyspace-events is '{}', which lacks '{}', and "
            "sessiond may not change it; set notify-keyspace-events Exe in redis.conf",
            flags, missing);
      } else if (!missing.empty()) {
        RedisCommand set_flags{"CONFIG", "SET", "notify-keyspace-events", flags + missing};
        Result<RedisReply> set = co_await connection->Execute(std::move(set_flags));
        if (!set.ok()) co_return;
        if (set->is_error()) {
          problem = fmt::format(
              "expiry events off: Redis refused CONFIG SET notify-keyspace-events ({}), so "
              "watches never see EXPIRED; set notify-keyspace-events Exe in redis.conf",
              set->text());
        } else {
          spdlog::info(
              "node {}: set notify-keyspace-events to '{}' on Redis at {} for expiry "
              "events",
              options_.node_id, flags + missing, redis_.url.Describe());
        }
      }
    }
    if (!problem.empty() && problem != keyspace_problem_) {
      spdlog::warn("node {}: {}", options_.node_id, problem);
    }
    keyspace_problem_ = std::move(problem);
  }

  void OnSubscribed(int64_t client_id) {
    spdlog::info("node {}: subscribed to sessiond events on Redis at {}", options_.node_id,
                 redis_.url.Describe());
    subscribed_signal_.cancel();
    if (tracked_) {
      // Tracking must now redirect to this connection: re-establish the tracked connections.
      cache_.Flush();
      tracked_->DropAll(Unavailable("the invalidation subscription moved to client " +
                                    std::to_string(client_id)));
    }
  }

  void OnSubscriptionLost(const Status& reason) {
    spdlog::warn("node {}: lost the event subscription to Redis at {}: {}", options_.node_id,
                 redis_.url.Describe(), reason.message());
    if (tracked_) {
      cache_.Flush();
      tracked_->DropAll(Unavailable("the invalidation subscription was lost"));
    }
  }

  void OnMessage(const std::string& channel, const RedisReply& payload) {
    if (channel == layout_.events_channel()) {
      std::optional<v1::SessionEvent> event = RedisSessionLayout::DecodeEvent(payload.text());
      if (!event) {
        spdlog::warn("node {}: ignored a malformed message on {}", options_.node_id, channel);
        return;
      }
      ++events_received_;
      hub_.Publish(*event);
      return;
    }
    if (channel == layout_.expired_channel() || channel == layout_.evicted_channel()) {
      std::optional<std::string_view> id = layout_.IdOfKey(payload.text());
      if (!id) return;  // a principal index, or a key that is not sessiond's
      cache_.Invalidate(*id);
      ++counted_.expired;
      v1::SessionEvent event;
      event.set_kind(v1::SessionEvent::EXPIRED);
      event.set_id(std::string(*id));
      event.set_origin_node(std::string(kRedisOrigin));
      event.set_at_ms(options_.clock->NowMs());
      hub_.Publish(event);
      return;
    }
    if (channel == RedisSessionLayout::kInvalidateChannel) {
      if (!payload.is_array()) {  // nil: FLUSHDB / FLUSHALL
        cache_.Flush();
        return;
      }
      for (const RedisReply& key : payload.elements()) {
        if (std::optional<std::string_view> id = layout_.IdOfKey(key.text())) {
          cache_.Invalidate(*id);
        }
      }
    }
  }

  // A watch that tells the manager when it ends, so it can unsubscribe from events.
  class CountedWatch : public WatchHandle {
   public:
    CountedWatch(std::unique_ptr<WatchHandle> watch, std::weak_ptr<Impl> impl)
        : watch_(std::move(watch)), impl_(std::move(impl)) {}
    ~CountedWatch() override {
      watch_.reset();
      if (std::shared_ptr<Impl> impl = impl_.lock()) impl->OnWatchEnded();
    }

   private:
    std::unique_ptr<WatchHandle> watch_;
    std::weak_ptr<Impl> impl_;
  };

  void OnWatchEnded() {
    if (watches_ > 0) --watches_;
    if (watches_ == 0) ArmUnwatch();
  }

  // Unsubscribes from events unwatch_grace from now unless a watch is made meanwhile.
  void ArmUnwatch() {
    if (stopped_ || !subscriber_) return;
    unwatch_timer_.expires_after(redis_.unwatch_grace);
    std::weak_ptr<Impl> weak = weak_from_this();
    unwatch_timer_.async_wait([weak](const boost::system::error_code& ec) {
      std::shared_ptr<Impl> self = weak.lock();
      if (ec || !self || self->stopped_ || self->watches_ > 0) return;
      self->subscriber_->Unwant(self->layout_.events_channel());
    });
  }

  asio::any_io_executor executor_;
  const ManagerOptions options_;
  const RedisOptions redis_;
  const RequestChecks checks_;
  const RedisSessionLayout layout_;
  const RedisSessionScripts scripts_;
  Status tls_error_;                      // set by MakeTls
  std::shared_ptr<RedisTlsContext> tls_;  // null for redis://
  RedisPool pool_;
  std::unique_ptr<RedisSubscriber> subscriber_;  // made by Start()
  std::unique_ptr<RedisPool> tracked_;           // near cache fills; made by Start()
  RedisNearCache cache_;
  EventHub hub_;
  asio::steady_timer subscribed_signal_;  // cancelled on every subscription; see WaitSubscribed
  asio::steady_timer unwatch_timer_;      // see ArmUnwatch
  size_t watches_ = 0;                    // live watches (CountedWatch)
  bool started_ = false;
  bool stopped_ = false;
  std::string keyspace_problem_;  // "" when expiry events are known to be on

  SessionCounters counted_;
  uint64_t events_received_ = 0;
  uint64_t script_reloads_ = 0;
  uint64_t touches_written_ = 0;
  uint64_t near_cache_hits_ = 0;
  uint64_t near_cache_misses_ = 0;
};

RedisManager::RedisManager(asio::any_io_executor executor, ManagerOptions options,
                           RedisOptions redis)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options), std::move(redis))) {}

RedisManager::~RedisManager() { impl_->Stop(); }

asio::awaitable<Status> RedisManager::Start() {
  std::shared_ptr<Impl> impl = impl_;
  co_return co_await impl->Start();
}

asio::awaitable<void> RedisManager::Stop() {
  impl_->Stop();
  co_return;
}

asio::awaitable<Result<v1::Session>> RedisManager::Create(v1::CreateRequest request) {
  std::shared_ptr<Impl> impl = impl_;
  co_return co_await impl->Create(std::move(request));
}

asio::awaitable<Result<v1::Session>> RedisManager::Get(v1::GetRequest request) {
  std::shared_ptr<Impl> impl = impl_;
  co_return co_await impl->Get(std::move(request));
}

asio::awaitable<Result<v1::Session>> RedisManager::Update(v1::UpdateRequest request) {
  std::shared_ptr<Impl> impl = impl_;
  co_return co_await impl->Update(std::move(request));
}

asio::awaitable<Status> RedisManager::Invalidate(v1::InvalidateRequest request) {
  std::shared_ptr<Impl> impl = impl_;
  co_return co_await impl->Invalidate(std::move(request));
}

asio::awaitable<Result<v1::Session>> RedisManager::RotateId(v1::RotateIdRequest request) {
  std::shared_ptr<Impl> impl = impl_;
  co_return co_await impl->RotateId(std::move(request));
}

asio::awaitable<Result<v1::SessionList>> RedisManager::FindByPrincipal(
    v1::FindByPrincipalRequest request) {
  std::shared_ptr<Impl> impl = impl_;
  co_return co_await impl->FindByPrincipal(std::move(request));
}

std::unique_ptr<WatchHandle> RedisManager::Watch(std::vector<std::string> ids, EventSink sink) {
  return impl_->Watch(std::move(ids), std::move(sink));
}

asio::awaitable<void> RedisManager::PrepareWatch() {
  std::shared_ptr<Impl> impl = impl_;
  co_await impl->PrepareWatch();
}

v1::NodeStats RedisManager::Stats() const { return impl_->Stats(); }

Readiness RedisManager::Ready() const { return impl_->Ready(); }

}  // namespace sessiond
