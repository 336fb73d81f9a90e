// RedisMemoryProbe: what the bench's own redis-server spends on the sessions it holds — Redis's
// own count of what it allocated (INFO memory's used_memory) before and after the bench creates its
// sessions, and MEMORY USAGE and OBJECT ENCODING of a few session keys (a session hash should stay
// in the compact listpack encoding: docs/redis.md).
//
// Blocking (hiredis's synchronous API with a deadline); call from the bench's main thread, while
// no load runs, so the numbers are about data rather than buffers.
#ifndef SESSIOND_TOOLS_BENCH_REDIS_MEMORY_PROBE_H_
#define SESSIOND_TOOLS_BENCH_REDIS_MEMORY_PROBE_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "sessiond/status.h"

namespace sessiond::bench {

// Memory per session in Redis, for one run.
struct RedisMemory {
  uint64_t keys = 0;  // keys added between the two snapshots
  // Bytes; used_memory after minus before. Includes any change in the connections' buffers
  // (a few hundred kB at most): measure over many sessions (20 000 or more) for a per-session
  // figure. (Redis's mem_clients_normal is no help: it moves by more than used_memory does.)
  int64_t used_memory_delta = 0;
  double used_bytes_per_key = 0;  // used_memory_delta / keys
  uint64_t sample_keys = 0;       // session keys sampled for MEMORY USAGE
  double memory_usage_bytes = 0;  // their mean MEMORY USAGE (the key and its value)
  std::string encoding;           // their OBJECT ENCODING: "listpack", or "mixed: ..."
};

class RedisMemoryProbe {
 public:
  explicit RedisMemoryProbe(uint16_t port,
                            std::chrono::milliseconds timeout = std::chrono::milliseconds(2000))
      : port_(port), timeout_(timeout) {}

  // Redis's memory and key count now. UNAVAILABLE when Redis does not answer.
  struct Snapshot {
    uint64_t used_memory = 0;  // INFO memory's used_memory
    uint64_t keys = 0;
  };
  Result<Snapshot> Take() const;

  // Compares `after` with `before` and samples up to `samples` keys matching `pattern`
  // (sd:s:* — the session hashes) for MEMORY USAGE and OBJECT ENCODING.
  Result<RedisMemory> Measure(const Snapshot& before, const Snapshot& after,
                              const std::string& pattern = "sd:s:*", int samples = 20) const;

 private:
  uint16_t port_;
  std::chrono::milliseconds timeout_;
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_REDIS_MEMORY_PROBE_H_
