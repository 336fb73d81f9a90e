// TuneMalloc: glibc takes both settings, and an operator's own tunables stand. (What the settings
// do to a state transfer is measured by DeltaTransferBenchmark; docs/delta.md, "Cost".)
#include "sessiond/malloc_tuning.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace sessiond {
namespace {

// Sets GLIBC_TUNABLES (or unsets it, for nullopt) for one test and puts it back afterwards.
class ScopedTunables {
 public:
  explicit ScopedTunables(const std::optional<std::string>& value) {
    if (const char* before = std::getenv("GLIBC_TUNABLES")) saved_ = before;
    if (value) {
      setenv("GLIBC_TUNABLES", value->c_str(), 1);
    } else {
      unsetenv("GLIBC_TUNABLES");
    }
  }
  ~ScopedTunables() {
    if (saved_) {
      setenv("GLIBC_TUNABLES", saved_->c_str(), 1);
    } else {
      unsetenv("GLIBC_TUNABLES");
    }
  }

 private:
  std::optional<std::string> saved_;
};

TEST(MallocTuningTest, GlibcTakesTheSettingsAndAllocationWorksOnNewThreads) {
  ScopedTunables none(std::nullopt);
  const MallocTuning done = TuneMalloc();
  EXPECT_FALSE(done.refused);
  EXPECT_TRUE(done.top_pad);
  EXPECT_TRUE(done.mmap_threshold);
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
  {
    ScopedTunables both("glibc.malloc.top_pad=131072:glibc.malloc.mmap_threshold=131072");
    const MallocTuning done = TuneMalloc();
    EXPECT_FALSE(done.top_pad);
    EXPECT_FALSE(done.mmap_threshold);
    EXPECT_FALSE(done.refused);
  }
  {
    ScopedTunables one("glibc.malloc.top_pad=131072");
    const MallocTuning done = TuneMalloc();
    EXPECT_FALSE(done.top_pad);
    EXPECT_TRUE(done.mmap_threshold);
  }
}

}  // namespace
}  // namespace sessiond
