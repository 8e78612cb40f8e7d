#pragma once
// Predictive distributions of the linearized model (GLM predictive; Immer et al., AISTATS
// 2021; METHODS.md §2) from logits and their linearized (co)variance.
#include <torch/types.h>

namespace kprior::linearize {

/// Probit approximation: p ≈ softmax_k(f_k / sqrt(1 + π v_k / 8)) with v the diagonal logit
/// variance [N, C] (MacKay 1992; the multiclass form of Daxberger et al., NeurIPS 2021).
torch::Tensor probit_predictive(const torch::Tensor& logits, const torch::Tensor& variance);

/// Monte-Carlo GLM predictive: mean over S draws f_s ~ N(f, V) of softmax(f_s), with V the
/// full [N, C, C] covariance (a jitter of 1e-10·mean diag keeps its Cholesky factor defined).
torch::Tensor mc_glm_predictive(const torch::Tensor& logits, const torch::Tensor& covariance,
                                int64_t samples, torch::Generator& generator);

}  // namespace kprior::linearize
