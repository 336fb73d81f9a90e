// TuneMalloc: glibc takes both settings, with or without an operator's own tunables. (What they
// do to a state transfer is measured by DeltaTransferBenchmark; docs/delta.md, "Cost".)
#include "sessiond/malloc_tuning.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

namespace sessiond {
namespace {

TEST(MallocTuningTest, GlibcTakesTheSettingsAndAllocationWorksOnNewThreads) {
  ASSERT_TRUE(TuneMalloc());
  // A new thread gets a new arena, whose heap is now made usable whole: allocate across it.
  std::thread([] {
    for (int i = 0; i < 1000; ++i) {
      auto block = std::make_unique<char[]>(64 << 10);
      block[0] = 1;
      block[(64 << 10) - 1] = 2;
    }
  }).join();
}

TEST(MallocTuningTest, AnOperatorsTunablesAreLeftAlone) {
  const char* before = std::getenv("GLIBC_TUNABLES");
  const std::string saved = before != nullptr ? before : "";
  setenv("GLIBC_TUNABLES", "glibc.malloc.top_pad=131072:glibc.malloc.mmap_threshold=131072", 1);
  EXPECT_TRUE(TuneMalloc());  // nothing left to set, nothing refused
  if (before != nullptr) {
    setenv("GLIBC_TUNABLES", saved.c_str(), 1);
  } else {
    unsetenv("GLIBC_TUNABLES");
  }
}

}  // namespace
}  // namespace sessiond
