#pragma once
// How the C allocator treats the large temporary tensors of the linearization.

namespace kprior {

/// Makes freed large blocks reusable instead of returned to the kernel. glibc serves every
/// allocation above its mmap threshold (adjusted dynamically, at most 32 MiB) with a fresh
/// mapping: the kernel zeroes each page on first touch and unmaps it on free. The per-example
/// signals and unfolded inputs of a LeNet-5 batch are tens of MiB each, so without this about
/// a third of mpe-influence's estimate went to page faults (README, "Speed"). Raises the mmap
/// and trim thresholds to 1 GiB for the whole process (the resident size then stays near its
/// peak). Call once at program start; a no-op where the C library is not glibc.
void reuse_large_allocations();

}  // namespace kprior
