#pragma once
// Mixed precision for training (issue #8): the model's training-mode forward passes run under
// bf16 autocast, as torch.autocast(device, dtype=torch.bfloat16) does in Python, while the
// parameters, their gradients and the optimizer's state stay fp32. Evaluation, predictions and
// every linearization (Jacobians, kernels, curvature) stay in the parameters' precision.
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace kprior::nn {

enum class Precision { Float32, BFloat16 };
/// "fp32" or "bf16" (throws kprior::UsageError otherwise).
Precision parse_precision(const std::string& name);
/// "fp32" or "bf16": the inverse of parse_precision.
std::string to_string(Precision precision);

/// Enables bf16 autocast on `device` for the scope's lifetime when `precision` is BFloat16
/// (does nothing for Float32), then restores the previous autocast state. Leaving the
/// outermost scope drops autocast's cache of bf16 weight copies, which would be stale once an
/// optimizer (or IVON's weight sampling) writes new fp32 values. Autocast casts fp32 tensors
/// only: a float64 model runs unchanged.
class AutocastScope {
 public:
  AutocastScope(Precision precision, c10::DeviceType device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool enabled_;
  c10::DeviceType device_;
  bool was_enabled_ = false;
  c10::ScalarType old_dtype_ = c10::ScalarType::BFloat16;
};

}  // namespace kprior::nn
