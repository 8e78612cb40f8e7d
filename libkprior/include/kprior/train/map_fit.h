#pragma once
// Fitting one dataset to the MAP of a Gaussian prior, the setting of the memory-perturbation
// experiments (Nickl et al., NeurIPS 2023, §4; METHODS.md §5): minimise
//     (1/N) [ Σ_i ℓ_i(w) + δ/2 ‖w‖² ]
// (the summed-loss objective with prior precision δ, divided by N so learning rates mean what
// they mean for a mean loss) with Adam, SGD or IVON, optionally warm-started and with a cosine
// learning-rate decay — how the publication retrains after removing data. Then the posterior:
// IVON's own, or the diagonal GGN Laplace 1/(δ + Σ_i GGN_i).
#include <torch/types.h>

#include <functional>
#include <optional>
#include <vector>

#include "kprior/data/dataset.h"
#include "kprior/nn/layer_tape.h"
#include "kprior/posterior/diagonal_gaussian.h"
#include "kprior/train/continual_learner.h"

namespace kprior::train {

struct FitOptions {
  TORCH_ARG(OptimizerKind, optimizer) = OptimizerKind::Adam;
  TORCH_ARG(double, lr) = 1e-3;
  /// Cosine decay from lr to final_lr over all steps (the publication's retraining
  /// schedule); < 0 keeps lr constant.
  TORCH_ARG(double, final_lr) = -1;
  TORCH_ARG(int64_t, epochs) = 10;
  /// Examples per step; >= N gives deterministic full-batch steps.
  TORCH_ARG(int64_t, batch_size) = 256;
  /// δ, the prior precision of the summed loss (the publication: 100).
  TORCH_ARG(double, prior_precision) = 100;
  TORCH_ARG(uint64_t, seed) = 0;
  /// IVON: initial Hessian h0 (its ess is N and its weight decay δ/N, so that its posterior
  /// is one of the same objective).
  TORCH_ARG(double, ivon_hess_init) = 0.1;

 public:
  /// Throws kprior::UsageError naming the first invalid field.
  void validate() const;
};

struct FitReport {
  std::vector<double> epoch_loss;  ///< mean objective per epoch (prior included)
  double seconds = 0;
  /// IVON's posterior after the fit (empty for Adam and SGD).
  std::optional<posterior::DiagonalGaussian> ivon_posterior;
  /// With Adam: the posterior from its second moments, Σ = 1/(N √v + δ) (Khan et al., ICML
  /// 2018; posterior::from_adam_moments), the gradient being that of the mean objective.
  std::optional<posterior::DiagonalGaussian> adam_posterior;
};

/// Fits `model` (from its current weights) on `data`, whose targets are positions in
/// `columns`. `on_epoch(epoch, mean_loss)` reports progress. Leaves the model in eval mode.
/// Throws kprior::Error when the loss becomes non-finite.
FitReport fit_map(nn::TapedModule& model, const data::Dataset& data,
                  const std::vector<int64_t>& columns, const FitOptions& options,
                  const std::function<void(int64_t, double)>& on_epoch = {});

/// The diagonal GGN Laplace posterior at the model's weights: Σ = 1/(δ + Σ_i diag GGN_i).
posterior::DiagonalGaussian laplace_posterior(nn::TapedModule& model, const data::Dataset& data,
                                              const std::vector<int64_t>& columns,
                                              double prior_precision);

/// Mean NLL and accuracy of the model's head on `data`.
struct FitQuality {
  double nll = 0, accuracy = 0;
};
FitQuality evaluate_fit(nn::TapedModule& model, const data::Dataset& data,
                        const std::vector<int64_t>& columns);
/// The same from precomputed logits [N, C] and targets [N].
FitQuality quality_of(const torch::Tensor& logits, const torch::Tensor& targets);

}  // namespace kprior::train
