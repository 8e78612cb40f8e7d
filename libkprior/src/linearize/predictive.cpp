#include "kprior/linearize/predictive.h"

#include <torch/torch.h>

#include <cmath>

#include "kprior/core/error.h"

namespace kprior::linearize {

torch::Tensor probit_predictive(const torch::Tensor& logits, const torch::Tensor& variance) {
  if (!logits.sizes().equals(variance.sizes())) {
    throw UsageError("probit_predictive: logits and variance must have the same shape [N, C]");
  }
  return torch::softmax(logits / (1 + M_PI / 8 * variance).sqrt(), 1);
}

torch::Tensor mc_glm_predictive(const torch::Tensor& logits, const torch::Tensor& covariance,
                                int64_t samples, torch::Generator& generator) {
  if (samples < 1) throw UsageError("mc_glm_predictive: samples must be >= 1");
  const int64_t n = logits.size(0), c = logits.size(1);
  if (covariance.dim() != 3 || covariance.size(0) != n || covariance.size(1) != c ||
      covariance.size(2) != c) {
    throw UsageError("mc_glm_predictive: covariance must be [N, C, C]");
  }
  const auto scale = covariance.diagonal(0, 1, 2).mean().clamp_min(1e-30) * 1e-10;
  const auto chol = torch::linalg_cholesky(
      covariance + scale * torch::eye(c, covariance.options()).unsqueeze(0));
  auto total = torch::zeros_like(logits);
  for (int64_t s = 0; s < samples; ++s) {
    const auto eps = torch::empty({n, c, 1}, logits.options()).normal_(0.0, 1.0, generator);
    total += torch::softmax(logits + chol.bmm(eps).squeeze(2), 1);
  }
  return total / static_cast<double>(samples);
}

}  // namespace kprior::linearize
