#include "kprior/core/fingerprint.h"

#include <torch/torch.h>

namespace kprior {

Fingerprint& Fingerprint::add_integers(const torch::Tensor& values) {
  const auto v = values.to(torch::kCPU, torch::kLong).contiguous();
  const auto* p = v.data_ptr<int64_t>();
  for (int64_t i = 0; i < v.numel(); ++i) add(static_cast<uint64_t>(p[i]));
  return *this;
}

}  // namespace kprior
