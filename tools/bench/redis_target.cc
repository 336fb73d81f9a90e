#include "tools/bench/redis_target.h"

#include <fmt/format.h>

#include <utility>
#include <vector>

namespace sessiond::bench {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

RedisTarget::RedisTarget(asio::any_io_executor executor, RedisUrl url, int connections,
                         uint32_t max_idle_s, std::chrono::milliseconds request_deadline,
                         uint64_t seed)
    : pool_(executor, url,
            [&] {
              RedisPoolOptions options;
              options.connections = static_cast<size_t>(std::max(1, connections));
              options.connection.command_timeout = request_deadline;
              options.connection.connect_timeout = request_deadline;
              options.connection.client_name = "sessiond-bench";
              return options;
            }()),
      layout_("sd:", url.db),
      connections_(std::max(1, connections)),
      idle_s_(std::to_string(max_idle_s)),
      idle_ms_(std::to_string(static_cast<uint64_t>(max_idle_s) * 1000)),
      connect_timeout_(request_deadline),
      rng_(seed) {}

RedisTarget::~RedisTarget() { pool_.Stop(); }

Result<SessionTargetFactory> RedisTarget::Factory(const std::string& redis_url, int app_servers,
                                                  uint32_t max_idle_s,
                                                  std::chrono::milliseconds request_deadline,
                                                  uint64_t seed) {
  Result<RedisUrl> url = RedisUrl::Parse(redis_url);
  if (!url.ok()) return url.status();
  auto next_seed = std::make_shared<uint64_t>(seed);
  return SessionTargetFactory([url = *url, app_servers, max_idle_s, request_deadline, next_seed](
                                  asio::any_io_executor executor, int connections_per_node) {
    return std::make_unique<RedisTarget>(std::move(executor), url,
                                         connections_per_node * std::max(1, app_servers),
                                         max_idle_s, request_deadline, (*next_seed)++);
  });
}

asio::awaitable<Status> RedisTarget::Connect() {
  if (!started_) {
    started_ = true;
    pool_.Start();
  }
  const bool connected = co_await pool_.WaitConnected(connect_timeout_);
  if (!connected) {
    co_return Unavailable(
        fmt::format("no connection to Redis within {} ms: {}", connect_timeout_.count(),
                    pool_.last_error().ok() ? "no answer" : pool_.last_error().message()));
  }
  co_return Status::Ok();
}

std::string RedisTarget::NewId() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string id(22, 'A');
  uint64_t bits = 0;
  int left = 0;
  for (char& c : id) {
    if (left < 6) {
      bits = rng_();
      left = 64;
    }
    c = kAlphabet[bits & 63];
    bits >>= 6;
    left -= 6;
  }
  return id;
}

Status RedisTarget::Check(const Result<std::vector<RedisReply>>& replies, const char* what) {
  if (!replies.ok()) return replies.status();
  for (const RedisReply& reply : *replies) {
    if (reply.is_error()) {
      return Internal(fmt::format("Redis refused the {}: {}", what, reply.text()));
    }
  }
  return Status::Ok();
}

asio::awaitable<Result<std::string>> RedisTarget::Create(uint32_t /*node*/, Attributes attributes) {
  std::string id = NewId();
  const std::string key = layout_.SessionKey(id);
  const std::string now = std::to_string(NowMs());
  std::vector<std::string> hset = {"HSET", key, "v", "1", "c", now, "a", now, "i", idle_s_};
  for (auto& [name, value] : attributes) {
    hset.push_back(RedisSessionLayout::AttributeField(name));
    hset.push_back(std::move(value));
  }
  std::vector<RedisCommand> commands;
  commands.emplace_back(hset);
  commands.push_back(RedisCommand{"PEXPIRE", key, idle_ms_});
  Result<std::vector<RedisReply>> replies = co_await pool_.ExecuteAll(std::move(commands));
  Status status = Check(replies, "session's creation");
  if (!status.ok()) co_return status;
  co_return id;
}

asio::awaitable<Status> RedisTarget::Get(uint32_t /*node*/, std::string id, bool touch,
                                         Attributes* attributes) {
  const std::string key = layout_.SessionKey(id);
  std::vector<RedisCommand> commands;
  commands.push_back(RedisCommand{"HGETALL", key});
  if (touch) {
    commands.push_back(RedisCommand{"HSET", key, "a", std::to_string(NowMs())});
    commands.push_back(RedisCommand{"PEXPIRE", key, idle_ms_});
  }
  Result<std::vector<RedisReply>> replies = co_await pool_.ExecuteAll(std::move(commands));
  Status status = Check(replies, "session's read");
  if (!status.ok()) co_return status;
  const RedisReply& fields = replies->front();
  if (!fields.is_array() || fields.elements().empty()) {
    co_return NotFound("session " + id + " does not exist in Redis");
  }
  if (attributes != nullptr) {
    attributes->clear();
    const auto& flat = fields.elements();
    for (size_t i = 0; i + 1 < flat.size(); i += 2) {
      const std::string& field = flat[i].text();
      if (field.size() > 1 && field[0] == '.') (*attributes)[field.substr(1)] = flat[i + 1].text();
    }
  }
  co_return Status::Ok();
}

asio::awaitable<Status> RedisTarget::Set(uint32_t /*node*/, std::string id, std::string name,
                                         std::string value) {
  const std::string key = layout_.SessionKey(id);
  std::vector<RedisCommand> commands;
  commands.push_back(RedisCommand{"HSET", key, RedisSessionLayout::AttributeField(name), value, "a",
                                  std::to_string(NowMs())});
  commands.push_back(RedisCommand{"PEXPIRE", key, idle_ms_});
  Result<std::vector<RedisReply>> replies = co_await pool_.ExecuteAll(std::move(commands));
  co_return Check(replies, "attribute's write");
}

}  // namespace sessiond::bench
