#pragma once
// Scores that rank training examples for a memory of past tasks, and per-class selection
// (METHODS.md §3).
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace kprior::memory {

/// FROMP's score (Pan et al., NeurIPS 2020, §3.3): Tr Λ(x) = Σ_k p_k (1 − p_k), from the
/// probabilities [N, C] on the task's own head.
torch::Tensor lambda_trace_scores(const torch::Tensor& probs);

/// The memory-perturbation score "prediction error × prediction variance" (Nickl et al.,
/// NeurIPS 2023): Σ_k |e_k λ_k v_k| with e = p − y, λ_k = p_k (1 − p_k) and v_k the
/// linearized logit variance. `targets` are positions in the head [N].
torch::Tensor mpe_scores(const torch::Tensor& probs, const torch::Tensor& targets,
                         const torch::Tensor& logit_variance);

/// Uniform random scores in [0, 1) from a SplitMix64 stream (FRORP's random memory).
torch::Tensor random_scores(int64_t n, uint64_t seed);

/// Indices of the `per_class` highest-scoring examples of each label (all of a label's
/// examples if it has fewer), ties broken by the smaller index; classes in ascending order,
/// within a class by descending score.
std::vector<int64_t> select_top_per_class(const torch::Tensor& scores, const torch::Tensor& labels,
                                          int64_t per_class);

/// How many of `total` memory slots each class gets, given each class's example count: an
/// equal share (the remainder one each to the first classes with room), where a class with
/// fewer examples than its share gives all it has and its unused slots are shared among the
/// others. The quotas sum to min(total, Σ counts): a class-imbalanced task still gets the
/// memory size asked for, as balanced as its classes allow.
std::vector<int64_t> class_quotas(const std::vector<int64_t>& counts, int64_t total);

}  // namespace kprior::memory
