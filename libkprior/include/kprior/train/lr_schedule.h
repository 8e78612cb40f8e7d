#pragma once
// How the learning rate moves within a task.
#include <cstdint>
#include <string>

namespace kprior::train {

/// Constant: lr throughout. Cosine: lr·½(1 + cos(π s/S)) at step s of the task's S steps,
/// restarting at every task (each task is a new training run) — the decay IVON is trained
/// with (Shen et al., ICML 2024).
enum class LrSchedule { Constant, Cosine };

/// "constant" or "cosine" (throws kprior::UsageError otherwise).
LrSchedule parse_lr_schedule(const std::string& name);
/// "constant" or "cosine": the inverse of parse_lr_schedule.
std::string to_string(LrSchedule schedule);
/// The learning rate at step `step` (0-based) of `steps` under `schedule`, from `base`.
double scheduled_lr(double base, LrSchedule schedule, int64_t step, int64_t steps);

}  // namespace kprior::train
