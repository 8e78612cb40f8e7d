#include "kprior/train/lr_schedule.h"

#include <cmath>

#include "kprior/core/error.h"

namespace kprior::train {

LrSchedule parse_lr_schedule(const std::string& name) {
  if (name == "constant") return LrSchedule::Constant;
  if (name == "cosine") return LrSchedule::Cosine;
  throw UsageError("learning-rate schedule must be constant or cosine, got '" + name + "'");
}

std::string to_string(LrSchedule schedule) {
  return schedule == LrSchedule::Cosine ? "cosine" : "constant";
}

double scheduled_lr(double base, LrSchedule schedule, int64_t step, int64_t steps) {
  if (schedule == LrSchedule::Constant || steps <= 0) return base;
  const double pi = std::acos(-1.0);
  return base * 0.5 * (1.0 + std::cos(pi * static_cast<double>(step) / static_cast<double>(steps)));
}

}  // namespace kprior::train
