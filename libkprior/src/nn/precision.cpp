#include "kprior/nn/precision.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include "kprior/core/error.h"

// LibTorch 2.4 replaced the per-device autocast functions (set_enabled for CUDA,
// set_cpu_enabled for the CPU) with functions that take the device type.
#define KPRIOR_AUTOCAST_BY_DEVICE (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))

namespace kprior::nn {

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::Float32;
  if (name == "bf16") return Precision::BFloat16;
  throw UsageError("precision must be fp32 or bf16, got '" + name + "'");
}

std::string to_string(Precision precision) { return precision == Precision::BFloat16 ? "bf16" : "fp32"; }

namespace {

bool autocast_enabled(c10::DeviceType device) {
#if KPRIOR_AUTOCAST_BY_DEVICE
  return at::autocast::is_autocast_enabled(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

c10::ScalarType autocast_dtype(c10::DeviceType device) {
#if KPRIOR_AUTOCAST_BY_DEVICE
  return at::autocast::get_autocast_dtype(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                         : at::autocast::get_autocast_cpu_dtype();
#endif
}

void set_autocast(c10::DeviceType device, bool enabled, c10::ScalarType dtype) {
#if KPRIOR_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_enabled(device, enabled);
  at::autocast::set_autocast_dtype(device, dtype);
#else
  if (device == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}

}  // namespace

AutocastScope::AutocastScope(Precision precision, c10::DeviceType device)
    : enabled_(precision == Precision::BFloat16), device_(device) {
  if (!enabled_) return;
  if (device_ != c10::DeviceType::CPU && device_ != c10::DeviceType::CUDA) {
    throw UsageError("bf16 autocast runs on the CPU or CUDA only");
  }
  was_enabled_ = autocast_enabled(device_);
  old_dtype_ = autocast_dtype(device_);
  set_autocast(device_, true, c10::ScalarType::BFloat16);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!enabled_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(device_, was_enabled_, old_dtype_);
}

}  // namespace kprior::nn
