#pragma once
// Removing a set S of training examples (MPE, Nickl et al., NeurIPS 2023, eq. 4 and its set
// form; METHODS.md §5): the posterior precision loses the curvature of S and the mean moves by
// one Newton step,
//     Σ^{∖S} = (Σ⁻¹ − Σ_{i∈S} J_iᵀ Λ_i J_i)⁻¹,      m^{∖S} − m = Σ^{∖S} Σ_{i∈S} ∇ℓ_i(m),
// with diagonal Σ and the diagonal GGN of S. Predictions anywhere then move by the linearized
// J(x)(m^{∖S} − m). The loss ℓ is the summed softmax cross-entropy, so Σ must be a posterior of
// the summed loss with prior precision δ (Laplace: 1/(δ + GGN); IVON trained with ess N and
// weight decay δ/N: 1/(N h + δ)). The shift takes m to be a stationary point of the full
// objective, as the publication does: a model stopped short of one (or IVON's mean, where only
// the expected gradient vanishes) leaves its remaining gradient out of the step.
#include <torch/types.h>

#include <limits>
#include <vector>

#include "kprior/data/dataset.h"
#include "kprior/nn/layer_tape.h"
#include "kprior/posterior/diagonal_gaussian.h"

namespace kprior::influence {

struct SetRemoval {
  int64_t removed = 0;
  std::vector<torch::Tensor> mean_shift;  ///< m^{∖S} − m per parameter
  std::vector<torch::Tensor> variance;    ///< diag Σ^{∖S} per parameter
  int64_t clamped = 0;  ///< parameters whose downdated precision fell below the floor
};

/// The set form for the examples `indices` of (x, targets) — targets are positions in
/// `columns` — at the model's current weights m, under `posterior` (aligned with
/// model.parameters()). A downdated precision below `precision_floor` (the prior precision δ:
/// no posterior is less certain than the prior; reached when Σ is not the GGN Laplace of
/// these data at m — IVON's running estimate, Adam's √v, which is no curvature — or by
/// rounding) is raised to it and counted. Forward passes run in eval mode, as the Jacobians.
/// Throws kprior::UsageError for an empty set, an index out of range or given twice, or a
/// misaligned posterior.
SetRemoval remove_set(nn::TapedModule& model, const torch::Tensor& x, const torch::Tensor& targets,
                      const std::vector<int64_t>& columns, const posterior::DiagonalGaussian& posterior,
                      const std::vector<int64_t>& indices, double precision_floor,
                      int64_t batch_size = 1024);

/// Linearized logits at `columns` after the removal: f(x) + J(x) (m^{∖S} − m), [N, C].
torch::Tensor logits_after(nn::TapedModule& model, const torch::Tensor& x,
                           const std::vector<int64_t>& columns, const SetRemoval& removal);

/// Gradient of the summed cross-entropy Σ_i ℓ_i over (x, targets) at the model's weights,
/// per parameter, in batches.
std::vector<torch::Tensor> summed_loss_gradient(nn::TapedModule& model, const torch::Tensor& x,
                                                const torch::Tensor& targets,
                                                const std::vector<int64_t>& columns,
                                                int64_t batch_size = 1024);

/// The set form's prediction of removing `indices` from `train`: the NLL of the removed
/// examples under the linearized shifted model, and the test NLL and accuracy on `test` (NaN
/// when `test` is empty).
struct SetEffect {
  double removed_nll = 0;
  double test_nll = std::numeric_limits<double>::quiet_NaN();
  double test_accuracy = std::numeric_limits<double>::quiet_NaN();
  int64_t clamped = 0;  ///< see SetRemoval::clamped
};
SetEffect estimate_set_effect(nn::TapedModule& model, const data::Dataset& train,
                              const data::Dataset& test, const std::vector<int64_t>& columns,
                              const posterior::DiagonalGaussian& posterior,
                              const std::vector<int64_t>& indices, double precision_floor);

}  // namespace kprior::influence
