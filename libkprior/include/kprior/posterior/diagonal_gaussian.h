#pragma once
// A diagonal Gaussian over a model's parameters, q(w) = N(m, diag σ²), held per tensor in
// parameter order. Produced by IVON (σ² = 1/(ess (h + δ))), and by the other posterior sources
// of METHODS.md §2 (diagonal GGN Laplace, Adam moments); consumed by the kernels, memory
// selection, regularizers and influence estimates.
#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

namespace kprior::posterior {

class DiagonalGaussian {
 public:
  DiagonalGaussian() = default;
  /// `mean` and `variance` must have the same number of tensors with equal shapes, variance
  /// finite and > 0 (throws kprior::UsageError otherwise). `source` names where it came from
  /// ("ivon", "laplace", "adam", ...).
  DiagonalGaussian(std::vector<torch::Tensor> mean, std::vector<torch::Tensor> variance,
                   std::string source);

  const std::vector<torch::Tensor>& mean() const { return mean_; }
  const std::vector<torch::Tensor>& variance() const { return variance_; }
  const std::string& source() const { return source_; }
  size_t num_tensors() const { return mean_.size(); }
  /// Total number of scalar parameters P.
  int64_t numel() const;

  /// Mean, variance and precision flattened into one vector [P], in parameter order.
  torch::Tensor flat_mean() const;
  torch::Tensor flat_variance() const;
  torch::Tensor flat_precision() const;

  /// One draw θ = m + σ ⊙ ε, ε ~ N(0, I) from `generator`, per tensor.
  std::vector<torch::Tensor> sample(torch::Generator& generator) const;

 private:
  std::vector<torch::Tensor> mean_;
  std::vector<torch::Tensor> variance_;
  std::string source_;
};

/// A generator on `device` seeded with `seed`, independent of LibTorch's global one (a CPU
/// generator, or a clone of the device's default generator re-seeded).
torch::Generator seeded_generator(const torch::Device& device, uint64_t seed);

/// Writes `values` into `params` (same count and shapes) and restores the previous values on
/// destruction, also during exception unwinding. Used to evaluate a model at a sample.
class ScopedParameters {
 public:
  ScopedParameters(std::vector<torch::Tensor> params, const std::vector<torch::Tensor>& values);
  ~ScopedParameters();
  ScopedParameters(const ScopedParameters&) = delete;
  ScopedParameters& operator=(const ScopedParameters&) = delete;

 private:
  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> saved_;
};

/// Bayesian model average of class probabilities (METHODS.md §1):
/// p̄(x) = (1/S) Σ_s softmax(f_{θ_s}(x)), θ_s ~ q, written into `params` one at a time.
/// `forward` maps inputs to logits [N, C]. The parameters are restored afterwards.
torch::Tensor bma_probabilities(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                                const std::vector<torch::Tensor>& params,
                                const DiagonalGaussian& q, const torch::Tensor& inputs,
                                int64_t samples, torch::Generator& generator);

}  // namespace kprior::posterior
