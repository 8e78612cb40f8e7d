#pragma once
// The elementwise parts of IVON (METHODS.md §1; Shen et al., ICML 2024, Algorithm 1), in two
// implementations with identical arithmetic: fused single-pass loops over contiguous CPU
// float/double tensors (one memory pass instead of ~15), and tensor operations for every
// other case (CUDA, other dtypes, non-contiguous parameters).
#include <torch/types.h>

namespace kprior::optim::detail {

/// Per-group constants of one update.
struct UpdateConstants {
  double beta1, beta2, ess, weight_decay, clip_radius;
  double step_size;  // α' = α (h0 + δ) if rescale_lr else α
  double debias;     // b = 1 − β1^t if debias else 1
  double inv_samples;  // 1 / k
  bool gradsq;
};

/// True when the fused CPU loops apply to all of these tensors.
bool fusable(const torch::Tensor& param, const torch::Tensor& a, const torch::Tensor& b);

/// saved ← p;  p ← p + ε / sqrt(ess (h + δ)).
void write_sample(const torch::Tensor& p, const torch::Tensor& saved, const torch::Tensor& hess,
                  const torch::Tensor& eps, double ess, double weight_decay, bool fused);

/// As write_sample with ε drawn inside the loop from kprior's counter-based stream: chunks of
/// kNoiseChunk elements each get a SplitMix64 seeded by mix_seed(stream, chunk) and Ziggurat
/// normals, so the noise is the same for any number of threads. Fused path only.
void write_sample_streamed(const torch::Tensor& p, const torch::Tensor& saved,
                           const torch::Tensor& hess, uint64_t stream, double ess,
                           double weight_decay);

/// grad_sum += ĝ;  nxg_sum += (p − saved) ⊙ ĝ  (or ĝ² for gradsq);  p ← saved.
/// With `first` (the first sample since the last step) the sums are overwritten instead of
/// accumulated, which spares reading them and zeroing them after the update.
/// `grad` may be undefined (no gradient: counts as 0).
void record_and_restore(const torch::Tensor& p, const torch::Tensor& saved,
                        const torch::Tensor& grad, const torch::Tensor& grad_sum,
                        const torch::Tensor& nxg_sum, bool gradsq, bool first, bool fused);

/// Steps 1–5 of the update for one parameter. The sums are left as they are: the next
/// sample's record_and_restore(first = true) overwrites them.
void update_param(const torch::Tensor& m, const torch::Tensor& momentum, const torch::Tensor& hess,
                  const torch::Tensor& grad_sum, const torch::Tensor& nxg_sum,
                  const UpdateConstants& c, bool fused);

}  // namespace kprior::optim::detail
