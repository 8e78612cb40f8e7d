#include "kprior/core/allocator.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace kprior {

void reuse_large_allocations() {
#if defined(__GLIBC__)
  constexpr int kOneGiB = 1 << 30;
  // Setting either threshold also switches off glibc's dynamic adjustment of the mmap one.
  mallopt(M_MMAP_THRESHOLD, kOneGiB);
  mallopt(M_TRIM_THRESHOLD, kOneGiB);
#endif
}

}  // namespace kprior
