#include "tools/bench/redis_memory_probe.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <map>
#include <memory>
#include <string_view>
#include <vector>

namespace sessiond::bench {
namespace {

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;
using Reply = std::unique_ptr<redisReply, ReplyFree>;

timeval ToTimeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000),
                 static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

Result<Context> Connect(uint16_t port, std::chrono::milliseconds timeout) {
  Context c(redisConnectWithTimeout("127.0.0.1", port, ToTimeval(timeout)));
  if (!c || c->err) {
    return Unavailable("cannot reach redis-server on 127.0.0.1:" + std::to_string(port) + ": " +
                       (c ? c->errstr : "out of memory"));
  }
  redisSetTimeout(c.get(), ToTimeval(timeout));
  return c;
}

Result<Reply> Command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  Reply reply(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lengths.data())));
  if (!reply) return Unavailable("redis-server did not answer " + args.front() + ": " + c->errstr);
  if (reply->type == REDIS_REPLY_ERROR) {
    return Internal("redis-server refused " + args.front() + ": " +
                    std::string(reply->str, reply->len));
  }
  return reply;
}

// "used_memory:12345\r\n" out of INFO's text.
std::optional<uint64_t> InfoField(std::string_view info, std::string_view field) {
  const std::string key = std::string(field) + ":";
  size_t at = 0;
  while ((at = info.find(key, at)) != std::string_view::npos) {
    if (at == 0 || info[at - 1] == '\n') {
      return std::strtoull(std::string(info.substr(at + key.size(), 24)).c_str(), nullptr, 10);
    }
    at += key.size();
  }
  return std::nullopt;
}

}  // namespace

Result<RedisMemoryProbe::Snapshot> RedisMemoryProbe::Take() const {
  Result<Context> c = Connect(port_, timeout_);
  if (!c.ok()) return c.status();
  Result<Reply> info = Command(c->get(), {"INFO", "memory"});
  if (!info.ok()) return info.status();
  Result<Reply> size = Command(c->get(), {"DBSIZE"});
  if (!size.ok()) return size.status();
  Snapshot snapshot;
  const std::string_view text((*info)->str != nullptr ? (*info)->str : "", (*info)->len);
  std::optional<uint64_t> used = InfoField(text, "used_memory");
  if (!used) return Internal("INFO memory has no used_memory field");
  snapshot.used_memory = *used;
  snapshot.keys = static_cast<uint64_t>((*size)->integer);
  return snapshot;
}

Result<RedisMemory> RedisMemoryProbe::Measure(const Snapshot& before, const Snapshot& after,
                                              const std::string& pattern, int samples) const {
  RedisMemory m;
  m.keys = after.keys > before.keys ? after.keys - before.keys : 0;
  m.used_memory_delta =
      static_cast<int64_t>(after.used_memory) - static_cast<int64_t>(before.used_memory);
  if (m.keys > 0) m.used_bytes_per_key = static_cast<double>(m.used_memory_delta) / m.keys;

  Result<Context> c = Connect(port_, timeout_);
  if (!c.ok()) return c.status();
  // The first keys SCAN finds: a sample that does not depend on RANDOMKEY's luck.
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    Result<Reply> scan = Command(c->get(), {"SCAN", cursor, "MATCH", pattern, "COUNT", "100"});
    if (!scan.ok()) return scan.status();
    if ((*scan)->type != REDIS_REPLY_ARRAY || (*scan)->elements != 2) {
      return Internal("SCAN answered something other than [cursor, keys]");
    }
    cursor.assign((*scan)->element[0]->str, (*scan)->element[0]->len);
    const redisReply* found = (*scan)->element[1];
    for (size_t i = 0; i < found->elements && static_cast<int>(keys.size()) < samples; ++i) {
      keys.emplace_back(found->element[i]->str, found->element[i]->len);
    }
  } while (cursor != "0" && static_cast<int>(keys.size()) < samples);

  std::map<std::string, int> encodings;
  double usage = 0;
  for (const std::string& key : keys) {
    Result<Reply> bytes = Command(c->get(), {"MEMORY", "USAGE", key, "SAMPLES", "0"});
    Result<Reply> encoding = Command(c->get(), {"OBJECT", "ENCODING", key});
    // A key that expired or was renamed between SCAN and here is skipped.
    if (!bytes.ok() || !encoding.ok() || (*bytes)->type != REDIS_REPLY_INTEGER ||
        (*encoding)->type != REDIS_REPLY_STRING) {
      continue;
    }
    usage += static_cast<double>((*bytes)->integer);
    ++encodings[std::string((*encoding)->str, (*encoding)->len)];
    ++m.sample_keys;
  }
  if (m.sample_keys > 0) m.memory_usage_bytes = usage / m.sample_keys;
  if (encodings.size() == 1) {
    m.encoding = encodings.begin()->first;
  } else {
    for (const auto& [name, n] : encodings) {
      m.encoding += (m.encoding.empty() ? "mixed: " : ", ") + std::to_string(n) + " " + name;
    }
  }
  return m;
}

}  // namespace sessiond::bench
