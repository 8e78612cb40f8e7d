#include "kprior/optim/grad_clip.h"

#include <torch/torch.h>

namespace kprior::optim {

torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  std::vector<torch::Tensor> grads, norms;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    grads.push_back(p.grad());
    norms.push_back(p.grad().norm(2));
  }
  if (grads.empty()) return {};
  torch::NoGradGuard no_grad;
  const auto total = torch::stack(norms).norm(2);
  // Multiplying by exactly 1 where the norm is within the bound leaves those gradients as they are.
  const auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
  for (auto& g : grads) g.mul_(coef);
  return total;
}

}  // namespace kprior::optim
