#include "tools/bench/workload_result.h"

namespace sessiond::bench {

const char* OpName(Op op) {
  switch (op) {
    case Op::kRead:
      return "read";
    case Op::kWrite:
      return "write";
    case Op::kCreate:
      return "create";
  }
  return "?";
}

uint64_t OpStats::failed() const {
  uint64_t n = 0;
  for (const auto& [code, count] : errors) n += count;
  return n;
}

void OpStats::Merge(const OpStats& other) {
  latency.Merge(other.latency);
  ok += other.ok;
  for (const auto& [code, count] : other.errors) errors[code] += count;
}

double WorkloadResult::throughput() const {
  if (measured.count() <= 0) return 0.0;
  return static_cast<double>(all.ok) / std::chrono::duration<double>(measured).count();
}

}  // namespace sessiond::bench
