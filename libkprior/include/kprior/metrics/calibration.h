#pragma once
// Probabilistic quality of predictions (METHODS.md §6): negative log-likelihood, expected
// calibration error (Naeini et al., AAAI 2015; equal-width confidence bins) and Brier score.
#include <torch/types.h>

namespace kprior::metrics {

/// Mean −log p[y] over examples; probs [N, C], targets [N] (positions in C).
double nll(const torch::Tensor& probs, const torch::Tensor& targets);
/// ECE = Σ_b (|B_b|/N) |acc(B_b) − conf(B_b)| over `bins` equal-width bins of the top-class
/// probability (15 by default).
double ece(const torch::Tensor& probs, const torch::Tensor& targets, int64_t bins = 15);
/// Mean over examples of Σ_k (p_k − y_k)².
double brier(const torch::Tensor& probs, const torch::Tensor& targets);

}  // namespace kprior::metrics
