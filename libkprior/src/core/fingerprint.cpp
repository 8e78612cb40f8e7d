#include "kprior/core/fingerprint.h"

#include <torch/torch.h>

#include <cstring>

namespace kprior {

Fingerprint& Fingerprint::add_integers(const torch::Tensor& values) {
  const auto v = values.to(torch::kCPU, torch::kLong).contiguous();
  const auto* p = v.data_ptr<int64_t>();
  for (int64_t i = 0; i < v.numel(); ++i) add(static_cast<uint64_t>(p[i]));
  return *this;
}

Fingerprint& Fingerprint::add_float_bits(const torch::Tensor& values) {
  const auto v = values.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto* p = v.data_ptr<float>();
  for (int64_t i = 0; i < v.numel(); ++i) {
    uint32_t bits = 0;
    std::memcpy(&bits, p + i, sizeof bits);
    add(bits);
  }
  return *this;
}

}  // namespace kprior
