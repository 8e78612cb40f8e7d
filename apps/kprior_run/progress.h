#pragma once
// kprior-run's progress lines: per epoch, within an epoch, and at task boundaries.
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <string>

#include <fmt/core.h>

#include "kprior/train/continual_learner.h"

namespace kprior_run {

/// "[#####...............]" for a fraction done in [0, 1].
std::string bar(double done);

/// Progress on one line per task on a terminal, one line per epoch otherwise.
void print_progress(const kprior::train::Progress& p, int64_t num_tasks, bool tty);

// Progress within an epoch and during the boundary work, for runs where either takes long
// (ImageNet: ~500 steps per epoch, minutes of kernels per boundary). On a terminal the task's
// progress line is redrawn at most 4 times a second; in a log, a line at most once a minute.
class StepProgress {
 public:
  StepProgress(int64_t num_tasks, bool tty) : num_tasks_(num_tasks), tty_(tty) {}

  void batch(const kprior::train::BatchProgress& p) {
    if (p.batch + 1 == p.batches) return;  // the epoch's own line follows
    if (!due(tty_ ? 0.25 : 60.0)) return;
    if (tty_) {
      const double done = (static_cast<double>(p.epoch) + static_cast<double>(p.batch + 1) / static_cast<double>(p.batches)) /
                          static_cast<double>(p.epochs);
      fmt::print("\r  task {}/{} {} epoch {}/{} batch {}/{}\x1b[K", p.task + 1, num_tasks_, bar(done), p.epoch + 1,
                 p.epochs, p.batch + 1, p.batches);
    } else {
      fmt::print("  task {}/{} epoch {}/{} batch {}/{}\n", p.task + 1, num_tasks_, p.epoch + 1, p.epochs, p.batch + 1,
                 p.batches);
    }
    std::fflush(stdout);
  }
  void boundary(int64_t task) {
    if (!tty_) return;  // a log has the boundary's seconds in the costs
    fmt::print("  task {}/{}: task boundary (memory selection, curvature, kernels) ...\x1b[K\r", task + 1, num_tasks_);
    std::fflush(stdout);
  }

 private:
  bool due(double seconds) {
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - last_).count() < seconds) return false;
    last_ = now;
    return true;
  }
  int64_t num_tasks_;
  bool tty_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace kprior_run
