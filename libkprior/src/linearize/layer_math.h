#pragma once
// Per-layer algebra on back-propagated signals t [N, R, out...] and recorded inputs, for
// Linear, Conv2d and eval-mode BatchNorm2d (METHODS.md §2). For Linear layers the diagonal
// quantities are computed from squared signals and squared inputs by matrix products, without
// forming per-example gradients; Conv2d and BatchNorm2d layers form them for a bounded chunk of
// examples at a time (memory independent of N; a BatchNorm2d layer has only 2C parameters).
#include <torch/types.h>

#include "kprior/nn/layer_tape.h"

namespace kprior::linearize::detail {

/// Per-example gradients of the layer's weight [N, R, weight.numel()] and bias
/// [N, R, bias.numel()] (undefined without bias) for the rows of t.
std::pair<torch::Tensor, torch::Tensor> per_example_grads(const nn::TapeEntry& e,
                                                          const torch::Tensor& t);

/// A Conv2d's per-example weight gradients [N, R, C_out·K] from signals t [N, R, C_out, H', W']
/// at its (full-size) output: one GEMM per example against unfold(input).
torch::Tensor conv_weight_grads(const nn::TapeEntry& e, const torch::Tensor& t);

/// v[n, r] = Σ_p G[n, r, p]² σ²_p over this layer's parameters.
torch::Tensor diag_quadratic(const nn::TapeEntry& e, const torch::Tensor& t,
                             const torch::Tensor& var_w, const torch::Tensor& var_b);

/// V[n, r, q] = Σ_p G[n, r, p] σ²_p G[n, q, p] (per-example covariance block).
torch::Tensor row_covariance(const nn::TapeEntry& e, const torch::Tensor& t,
                             const torch::Tensor& var_w, const torch::Tensor& var_b);

/// K[n, r, m, q] = Σ_p G1[n, r, p] σ²_p G2[m, q, p] between two passes of the same layer.
torch::Tensor cross_quadratic(const nn::TapeEntry& e1, const torch::Tensor& t1,
                              const nn::TapeEntry& e2, const torch::Tensor& t2,
                              const torch::Tensor& var_w, const torch::Tensor& var_b);

/// The row-diagonal part of cross_quadratic, K[r, n, m] = Σ_p G1[n, r, p] σ²_p G2[m, r, p]
/// (the per-class kernel blocks), at a fraction of the cost. Both passes need the same rows.
torch::Tensor cross_quadratic_same_rows(const nn::TapeEntry& e1, const torch::Tensor& t1,
                                        const nn::TapeEntry& e2, const torch::Tensor& t2,
                                        const torch::Tensor& var_w, const torch::Tensor& var_b);

/// Σ_{n,r} G[n, r, p]² per parameter: (weight-shaped, bias-shaped).
std::pair<torch::Tensor, torch::Tensor> sum_squares(const nn::TapeEntry& e, const torch::Tensor& t);

}  // namespace kprior::linearize::detail
