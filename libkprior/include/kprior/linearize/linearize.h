#pragma once
// The linearization engine (DNN2GP, Khan et al., NeurIPS 2019; METHODS.md §2): per-example
// Jacobians of chosen output columns (a task's head), predictive variances, kernels and
// curvature diagonals of a TapedModule under a diagonal posterior Σ, by the fast layer-wise
// path. `variances` are per-parameter tensors aligned with model.parameters() (e.g.
// IVON::posterior().variance() when IVON was built from model->parameters() and every one of
// them is trainable: IVON's posterior covers trainable parameters only). Every function
// that runs a TapedModule runs it in eval mode (dropout off, BatchNorm on its running
// statistics: per-example outputs) and restores each module's previous mode on return
// (nn::EvalModeGuard); jacobian_oracle runs `forward` as given.
#include <torch/types.h>

#include <functional>
#include <vector>

#include "kprior/nn/layer_tape.h"

namespace kprior::linearize {

/// Per-example Jacobians J [N, C, P] of the logits at `columns` w.r.t. all parameters,
/// flattened in model.parameters() order. Materialises N×C×P: for small N only.
torch::Tensor jacobian(nn::TapedModule& model, const torch::Tensor& x,
                       const std::vector<int64_t>& columns);

/// The slow, generic oracle: one backward pass per example and column, for any forward
/// function of the given parameters. For tests and for modules without a tape.
torch::Tensor jacobian_oracle(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                              const std::vector<torch::Tensor>& params, const torch::Tensor& x,
                              const std::vector<int64_t>& columns);

/// Linearized variance of the logits, diag(J Σ Jᵀ) [N, C], without forming J.
torch::Tensor logit_variance(nn::TapedModule& model, const torch::Tensor& x,
                             const std::vector<int64_t>& columns,
                             const std::vector<torch::Tensor>& variances);

/// Full C×C covariance of the logits per example, J Σ Jᵀ [N, C, C].
torch::Tensor logit_covariance(nn::TapedModule& model, const torch::Tensor& x,
                               const std::vector<int64_t>& columns,
                               const std::vector<torch::Tensor>& variances);

/// Variance of the probabilities (softmax over `columns`), diag(Λ J Σ Jᵀ Λ) [N, C],
/// Λ = diag(p) − p pᵀ.
torch::Tensor probability_variance(nn::TapedModule& model, const torch::Tensor& x,
                                   const std::vector<int64_t>& columns,
                                   const std::vector<torch::Tensor>& variances);

/// Kernel between two input sets, κ(x, x') = J(x) Σ J(x')ᵀ, as [N1, C, N2, C].
torch::Tensor kernel(nn::TapedModule& model, const torch::Tensor& x1, const torch::Tensor& x2,
                     const std::vector<int64_t>& columns,
                     const std::vector<torch::Tensor>& variances);

/// Kernels hold all their inputs' signals at once (FROMP's memory of a task): a kernel over more
/// than kKernelFloats (8 GiB of float32) throws UsageError with the estimate and what to change,
/// instead of failing to allocate.
constexpr int64_t kKernelFloats = int64_t{1} << 31;

/// Per-class blocks of J Σ Jᵀ across one input set: [C, N, N], block c = κ(x_n, x_m)_{cc}.
/// Block c needs only row c's signals: the rows are formed as many at a time as fit in
/// max_floats (kernel_floats), so only one row over the N inputs must fit (a 100-way head
/// costs more backward passes, not more memory).
torch::Tensor class_kernels(nn::TapedModule& model, const torch::Tensor& x,
                            const std::vector<int64_t>& columns,
                            const std::vector<torch::Tensor>& variances,
                            int64_t max_floats = kKernelFloats);

/// FROMP's per-class kernels (Pan et al., NeurIPS 2020, eq. 7): K_c = J⁽ᶜ⁾ Σ J⁽ᶜ⁾ᵀ with J⁽ᶜ⁾
/// the Jacobian of the probability of class c, i.e. the (c, c) blocks of Λ J Σ Jᵀ Λ.
/// Returns [C, N, N] (no jitter added). Rows in chunks that fit max_floats, as class_kernels.
torch::Tensor fromp_kernels(nn::TapedModule& model, const torch::Tensor& x,
                            const std::vector<int64_t>& columns,
                            const std::vector<torch::Tensor>& variances,
                            int64_t max_floats = kKernelFloats);

/// Floats held per input while its layer signals for `rows` output directions are formed:
/// each taped layer's output once per row, plus the layer inputs (a convolution's unfolded
/// input, kernel area × input). From one taped forward pass of x[0]. The per-example
/// functions above size their batches with it (at most 1 GiB of float32 signals per batch).
int64_t signal_floats_per_example(nn::TapedModule& model, const torch::Tensor& x, int64_t rows);

/// What a kernel over `n` inputs like x[0] with `rows` output rows holds at once: per input,
/// its layer signals and one layer's per-example gradients (the largest parameter tensor, two
/// copies at the peak) for each row, and its recorded layer inputs (unfolded only for a
/// bounded chunk at a time).
int64_t kernel_floats(nn::TapedModule& model, const torch::Tensor& x, int64_t n, int64_t rows);

/// Throws UsageError when kernel_floats(model, x, n, rows) exceeds kKernelFloats. kernel()
/// checks it with all its rows, class_kernels() and fromp_kernels() with one; an app checks
/// it before training (kprior-run with FROMP).
void check_kernel_memory(nn::TapedModule& model, const torch::Tensor& x, int64_t n, int64_t rows);
/// The most inputs whose kernels over `rows` output rows pass check_kernel_memory (inputs
/// shaped like `x`'s first one; kernel_floats is linear in n).
int64_t max_kernel_inputs(nn::TapedModule& model, const torch::Tensor& x, int64_t rows);

enum class Curvature {
  GGN,              ///< Σ_i J_iᵀ Λ_i J_i (diagonal), Λ the softmax Hessian
  EmpiricalFisher,  ///< Σ_i (∇ℓ_i)², ∇ℓ_i = J_iᵀ (p_i − y_i)
  TrueFisher,       ///< Σ_i E_{y~p_i} (J_iᵀ (p_i − 1_y))², the expectation taken exactly
};

/// Diagonal of the chosen curvature of the cross-entropy over a dataset, streamed in batches
/// (memory independent of N). `targets` are positions in `columns` (needed for the
/// empirical Fisher only; may be undefined otherwise). Per parameter, parameters() order.
/// The prior term (δ) is not included. For softmax cross-entropy the exact true Fisher
/// equals the GGN (Λ = E_y[(p − 1_y)(p − 1_y)ᵀ]); it is computed here from that expectation.
std::vector<torch::Tensor> curvature_diagonal(nn::TapedModule& model, const torch::Tensor& inputs,
                                              const torch::Tensor& targets,
                                              const std::vector<int64_t>& columns,
                                              Curvature kind, int64_t batch_size = 256);

/// The linearized change of the logits at `columns` for a parameter step `direction`
/// (per-parameter tensors aligned with model.parameters()): J(x) d, [N, C]. Forward-mode by
/// the double-backward identity J d = ∂/∂u [(uᵀJ) d], so it costs one forward and two
/// backward passes per batch whatever C is, and works for any differentiable model.
torch::Tensor jacobian_vector_product(nn::TapedModule& model, const torch::Tensor& x,
                                      const std::vector<int64_t>& columns,
                                      const std::vector<torch::Tensor>& direction);

/// The logits [N, C] of a head: `columns` of the model's outputs [N, C_out], in that order.
torch::Tensor head_logits(const torch::Tensor& logits, const std::vector<int64_t>& columns);

/// Λ = diag(p) − p pᵀ per example [N, C, C] from probabilities p [N, C]: the Hessian of the
/// softmax cross-entropy in the logits (the GGN's output curvature).
torch::Tensor softmax_hessian(const torch::Tensor& p);

/// Softmax over `columns` of the model's logits, [N, C] (no gradient; eval mode).
torch::Tensor head_probabilities(nn::TapedModule& model, const torch::Tensor& x,
                                 const std::vector<int64_t>& columns);

}  // namespace kprior::linearize
