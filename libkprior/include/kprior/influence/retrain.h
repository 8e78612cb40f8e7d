#pragma once
// The ground truth the memory-perturbation estimates are checked against: retraining without
// the removed examples, warm-started from the trained weights with the same prior δ (the
// protocol of Nickl et al., NeurIPS 2023, §4), then evaluated. Brute force by design.
#include <torch/types.h>

#include <vector>

#include "kprior/data/dataset.h"
#include "kprior/nn/layer_tape.h"
#include "kprior/train/map_fit.h"

namespace kprior::influence {

struct RetrainOutcome {
  double test_nll = 0, test_accuracy = 0;
  double removed_nll = 0;       ///< mean NLL of the removed examples after retraining (0 if none)
  torch::Tensor removed_probs;  ///< [|S|, C] their probabilities after retraining
  double seconds = 0;
};

/// Copies `weights` (aligned with model.parameters()) into the model, fits it with `fit` on
/// `train` without the examples `indices` (none: the control run on all data, which separates
/// the effect of the removal from the effect of retraining itself), evaluates on `test` (skipped
/// when it is empty) and on the removed examples, and leaves `weights` in the model again.
RetrainOutcome retrain_without(nn::TapedModule& model, const std::vector<torch::Tensor>& weights,
                               const data::Dataset& train, const data::Dataset& test,
                               const std::vector<int64_t>& columns,
                               const std::vector<int64_t>& indices, const train::FitOptions& fit);

/// Detached copies of the model's parameters (the weights to warm-start from).
std::vector<torch::Tensor> copy_weights(nn::TapedModule& model);
/// Writes `weights` into the model's parameters.
void set_weights(nn::TapedModule& model, const std::vector<torch::Tensor>& weights);

}  // namespace kprior::influence
