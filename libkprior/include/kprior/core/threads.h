#pragma once
// Thread settings. LibTorch starts with one intra-op thread on some machines (seen on Debian
// 12), so programs set it explicitly.

namespace kprior {

/// Number of hardware threads this process may run on (its CPU affinity; at least 1).
int hardware_threads();

/// Sets LibTorch's intra-op threads; 0 means all hardware threads, and more than there are
/// is capped at that. Returns the number set.
/// Throws UsageError for a negative count.
int set_threads(int threads);

}  // namespace kprior
