#include "tools/bench/bench_mode.h"

#include <array>

namespace sessiond::bench {
namespace {

struct Variant {
  const char* name;
  const char* daemon_mode;
  const char* ack;
  const char* extra_arg;  // nullptr = none
};

constexpr std::array<Variant, 10> kVariants = {{
    {"standalone", "standalone", "", nullptr},
    {"delta", "delta", "", nullptr},
    {"delta-async", "delta", "async", nullptr},
    {"delta-sync", "delta", "sync", nullptr},
    {"backup", "backup", "", nullptr},
    {"backup-async", "backup", "async", nullptr},
    {"backup-sync", "backup", "sync", nullptr},
    {"redis", "redis", "", nullptr},
    {"redis-nc", "redis", "", "--redis-near-cache"},
    {"redis-direct", "redis-direct", "", nullptr},
}};

}  // namespace

Result<BenchMode> BenchMode::Parse(std::string_view name) {
  for (const Variant& v : kVariants) {
    if (name != v.name) continue;
    BenchMode mode;
    mode.name = v.name;
    mode.daemon_mode = v.daemon_mode;
    mode.replication_ack = v.ack;
    if (v.extra_arg != nullptr) mode.extra_args.push_back(v.extra_arg);
    return mode;
  }
  return InvalidArgument("unknown mode \"" + std::string(name) + "\"; use " + KnownNames());
}

std::string BenchMode::KnownNames() {
  std::string names;
  for (const Variant& v : kVariants) names += (names.empty() ? "" : ", ") + std::string(v.name);
  return names;
}

}  // namespace sessiond::bench
