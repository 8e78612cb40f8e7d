#include "kprior/core/threads.h"

#include <torch/torch.h>

#include <algorithm>
#include <string>
#include <thread>

#include "kprior/core/error.h"

namespace kprior {

int hardware_threads() {
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
