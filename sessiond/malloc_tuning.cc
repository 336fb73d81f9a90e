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

bool TuneMalloc() {
  bool ok = true;
  if (!OperatorSet("glibc.malloc.top_pad")) {
    ok = mallopt(M_TOP_PAD, static_cast<int>(kMallocTopPad)) == 1 && ok;
  }
  if (!OperatorSet("glibc.malloc.mmap_threshold")) {
    ok = mallopt(M_MMAP_THRESHOLD, static_cast<int>(kMallocMmapThreshold)) == 1 && ok;
  }
  return ok;
}

}  // namespace sessiond
