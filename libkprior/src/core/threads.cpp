#include "kprior/core/threads.h"

#include <sched.h>
#include <torch/torch.h>

#include <algorithm>
#include <string>
#include <thread>

#include "kprior/core/error.h"

namespace kprior {

int hardware_threads() {
  // The cores this process may run on (taskset, a container's cpuset), not the machine's:
  // more threads than those only wait for each other.
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
    const int n = CPU_COUNT(&allowed);
    if (n > 0) return n;
  }
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

int set_threads(int threads) {
  if (threads < 0) {
    throw UsageError("the thread count must be >= 0 (0 = all cores; the apps' --threads), got " + std::to_string(threads));
  }
  // More threads than hardware threads only adds contention (and thousands would take
  // minutes to start): capped.
  const int n = threads == 0 ? hardware_threads() : std::min(threads, hardware_threads());
  torch::set_num_threads(n);
  return n;
}

}  // namespace kprior
