// How the daemon sets glibc's malloc up at start, before any other thread exists.
//
// A node that joins a delta cluster takes in some 1.5 GB a million sessions, most of it the
// attribute blocks its transfer worker builds. glibc serves a thread other than the main one
// from a thread arena: a 64 MiB reservation it makes usable with one mprotect call per page the
// heap grows by, unless M_TOP_PAD asks for more. That is one system call per 4 KiB page (a
// million per million sessions), each rewriting the address space the other threads are
// faulting in meanwhile. With M_TOP_PAD at 64 MiB every new heap is made usable whole, in one
// call; the pages are still only touched (and counted in the resident set) when used.
// docs/delta.md ("Cost", third round) has the measurements.
#ifndef SESSIOND_SESSIOND_MALLOC_TUNING_H_
#define SESSIOND_SESSIOND_MALLOC_TUNING_H_

#include <cstddef>

namespace sessiond {

// The padding glibc adds when it grows a heap: a thread arena's whole heap (HEAP_MAX_SIZE on
// 64-bit), so that it never grows page by page.
inline constexpr size_t kMallocTopPad = size_t{64} << 20;
// Setting M_TOP_PAD turns off glibc's dynamic mmap threshold (it starts at 128 KiB and rises to
// the size of the largest mmapped block freed, up to 32 MiB), which would leave every transient
// buffer over 128 KiB (a compressed chunk, a large frame) to a fresh mmap and fresh zeroed
// pages each time. This is where it would have risen for the buffers a transfer passes around;
// larger allocations (the session tables) keep their own mapping, given back when freed.
inline constexpr size_t kMallocMmapThreshold = size_t{4} << 20;

// What TuneMalloc did.
struct MallocTuning {
  bool top_pad = false;         // M_TOP_PAD set (false: the operator's tunable stands)
  bool mmap_threshold = false;  // M_MMAP_THRESHOLD set (likewise)
  bool refused = false;         // glibc refused a setting (the daemon runs on without it)
};

// Sets M_TOP_PAD and M_MMAP_THRESHOLD as above, each unless the operator set it in
// GLIBC_TUNABLES (glibc.malloc.top_pad, glibc.malloc.mmap_threshold). Call at process start,
// before threads start.
MallocTuning TuneMalloc();

}  // namespace sessiond

#endif  // SESSIOND_SESSIOND_MALLOC_TUNING_H_
