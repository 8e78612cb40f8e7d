// reuse_large_allocations: the glibc setting that keeps large temporary tensors off fresh
// mappings (a third of LeNet-5's influence estimate went to page faults without it).
#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "catch.h"
#include "kprior/core/allocator.h"

#if defined(__GLIBC__)
TEST_CASE("after reuse_large_allocations a large block comes from the heap, not a fresh mapping", "[core]") {
  constexpr size_t kBlock = size_t{64} << 20;
  const auto mapped_bytes = [] { return static_cast<size_t>(mallinfo2().hblkhd); };
  // Without the setting glibc maps a 64 MiB block afresh: the mapped bytes grow by it.
  const size_t start = mapped_bytes();
  void* fresh = std::malloc(kBlock);
  REQUIRE(fresh != nullptr);
  const bool mapped_before = mapped_bytes() >= start + kBlock;
  std::free(fresh);
  kprior::reuse_large_allocations();
  const size_t before = mapped_bytes();
  void* block = std::malloc(kBlock);
  REQUIRE(block != nullptr);
  std::memset(block, 1, kBlock);
  CHECK(mapped_bytes() < before + kBlock);  // served by the arena
  std::free(block);
  // The default glibc behaviour, unless an earlier test in this process set it already.
  INFO("64 MiB was a fresh mapping before the setting: " << mapped_before);
}
#endif
