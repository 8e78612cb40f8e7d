#include "progress.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstdio>

namespace kprior_run {

std::string bar(double done) {
  const int width = 20;
  const int filled = std::clamp(static_cast<int>(width * done), 0, width);
  return "[" + std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(width - filled), '.') + "]";
}

void print_progress(const kprior::train::Progress& p, int64_t num_tasks, bool tty) {
  if (tty) {
    fmt::print("\r  task {}/{} {} epoch {}/{}  loss {:.4f}\x1b[K", p.task + 1, num_tasks,
               bar(static_cast<double>(p.epoch + 1) / static_cast<double>(p.epochs)), p.epoch + 1, p.epochs,
               p.mean_loss);
    if (p.epoch + 1 == p.epochs) fmt::print("\n");
  } else {
    fmt::print("  task {}/{} epoch {}/{}  loss {:.4f}\n", p.task + 1, num_tasks, p.epoch + 1,
               p.epochs, p.mean_loss);
  }
  std::fflush(stdout);
}

}  // namespace kprior_run
