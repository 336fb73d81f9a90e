#include "sessiond/malloc_tuning.h"

#include <malloc.h>

#include <cstdlib>
#include <string_view>

namespace sessiond {
namespace {

// Whether the operator set `tunable` in GLIBC_TUNABLES: then theirs stands.
bool OperatorSet(std::string_view tunable) {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  return tunables != nullptr && std::string_view(tunables).find(tunable) != std::string_view::npos;
}

}  // namespace

MallocTuning TuneMalloc() {
  MallocTuning done;
  const auto set = [&done](int parameter, size_t value, bool* flag) {
    if (mallopt(parameter, static_cast<int>(value)) == 1) {
      *flag = true;
    } else {
      done.refused = true;
    }
  };
  if (!OperatorSet("glibc.malloc.top_pad")) set(M_TOP_PAD, kMallocTopPad, &done.top_pad);
  if (!OperatorSet("glibc.malloc.mmap_threshold")) {
    set(M_MMAP_THRESHOLD, kMallocMmapThreshold, &done.mmap_threshold);
  }
  return done;
}

}  // namespace sessiond
