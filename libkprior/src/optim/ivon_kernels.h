#pragma once
// The elementwise parts of IVON (METHODS.md §1; Shen et al., ICML 2024, Algorithm 1), in two
// implementations with the same arithmetic (up to rounding):
//   - fused single-pass loops over one contiguous CPU float/double tensor (one memory pass
//     instead of ~15);
//   - multi-tensor operations (`at::_foreach_*`) over a list of parameters at once, for every
//     other case (CUDA, other dtypes, non-contiguous parameters). One multi-tensor op costs a
//     few kernel launches for all parameters, where a per-parameter loop costs ~10 launches
//     per parameter and stage (ResNet-18: 62 tensors, ~600 launches per step).
// The foreach fast path on CUDA needs every list to match the parameters' sizes, strides and
// dtype position by position, so the optimizer allocates its state with the parameters'
// memory format (channels-last weights get channels-last state); otherwise the ops fall back
// to a per-tensor loop, which is correct but slower.
#include <torch/types.h>

#include <vector>

namespace kprior::optim::detail {

using TensorVec = std::vector<torch::Tensor>;

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

// ---- fused CPU loops (one tensor each) -----------------------------------------------------

/// saved ← p;  p ← p + ε / sqrt(ess (h + δ)).
void write_sample_fused(const torch::Tensor& p, const torch::Tensor& saved,
                        const torch::Tensor& hess, const torch::Tensor& eps, double ess,
                        double weight_decay);

/// As write_sample_fused with ε drawn inside the loop from kprior's counter-based stream:
/// chunks of kNoiseChunk elements each get a SplitMix64 seeded by mix_seed(stream, chunk) and
/// Ziggurat normals, so the noise is the same for any number of threads.
void write_sample_streamed(const torch::Tensor& p, const torch::Tensor& saved,
                           const torch::Tensor& hess, uint64_t stream, double ess,
                           double weight_decay);

/// grad_sum += ĝ;  nxg_sum += (p − saved) ⊙ ĝ  (or ĝ² for gradsq);  p ← saved.
/// With `first` (the first sample since the last step) the sums are overwritten instead of
/// accumulated, which spares reading them and zeroing them after the update.
/// `grad` may be undefined (no gradient: counts as 0).
void record_and_restore_fused(const torch::Tensor& p, const torch::Tensor& saved,
                              const torch::Tensor& grad, const torch::Tensor& grad_sum,
                              const torch::Tensor& nxg_sum, bool gradsq, bool first);

/// Steps 1–5 of the update for one parameter. The sums are left as they are: the next
/// sample's record (first = true) overwrites them.
void update_fused(const torch::Tensor& m, const torch::Tensor& momentum, const torch::Tensor& hess,
                  const torch::Tensor& grad_sum, const torch::Tensor& nxg_sum,
                  const UpdateConstants& c);

// ---- multi-tensor operations (lists aligned position by position) ---------------------------

/// dst[i] ← src[i] for all i (one multi-tensor copy on LibTorch ≥ 2.2, a loop before).
void copy_all(const TensorVec& dst, const TensorVec& src);

/// p ← p + ε / sqrt(ess (h + δ)) for every parameter of one group (saved ← p is copy_all,
/// done first by the caller so that a failure here can be undone).
void add_noise_foreach(const TensorVec& p, const TensorVec& hess, const TensorVec& eps,
                       double ess, double weight_decay);

/// record_and_restore_fused for a list of parameters that all have a gradient. With `first`,
/// grad_sum and nxg_sum are written (nxg_sum's tensors may be replaced by new ones of the same
/// layout: the product is formed out of place instead of copied).
void record_and_restore_foreach(const TensorVec& p, const TensorVec& saved, const TensorVec& grads,
                                TensorVec& grad_sum, TensorVec& nxg_sum, bool gradsq, bool first);

/// update_fused for a list of parameters of one group. Uses grad_sum and nxg_sum as scratch
/// (the next sample's record overwrites them anyway).
void update_foreach(const TensorVec& m, const TensorVec& momentum, const TensorVec& hess,
                    const TensorVec& grad_sum, const TensorVec& nxg_sum, const UpdateConstants& c);

}  // namespace kprior::optim::detail
