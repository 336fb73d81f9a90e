#include "sessiond/malloc_tuning.h"

#include <malloc.h>

namespace sessiond {

bool TuneMalloc() {
  const bool pad = mallopt(M_TOP_PAD, static_cast<int>(kMallocTopPad)) == 1;
  const bool threshold = mallopt(M_MMAP_THRESHOLD, static_cast<int>(kMallocMmapThreshold)) == 1;
  return pad && threshold;
}

}  // namespace sessiond
