#pragma once
// How well the memory-perturbation equation predicts removing one example at a time (MPE,
// Nickl et al., NeurIPS 2023, §4.1 and Fig. 2): for each chosen training example i, the
// estimated change of its own softmax output when i is removed, beside the change that
// retraining without i gives. Brute force by design: one retraining per example.
#include <torch/types.h>

#include <functional>
#include <vector>

#include "kprior/data/dataset.h"
#include "kprior/influence/sensitivity.h"
#include "kprior/nn/layer_tape.h"
#include "kprior/train/map_fit.h"

namespace kprior::influence {

struct SingleRemoval {
  int64_t index = 0;             ///< the removed training example
  int64_t label = 0;             ///< its target (a position in the head)
  torch::Tensor estimated;       ///< [C] float64: softmax(f_i + Δf_i) − softmax(f_i)
  torch::Tensor retrained;       ///< [C] float64: p_i retrained without i − p_i of the control run
  double estimated_l1_linear = 0;  ///< the publication's linearised L1 (linearized_softmax_l1)
};

/// For each of `indices` (positions in `train`): the estimate from `sens` (the sensitivities
/// of `train`, normally at `weights`) and the retrained change. Every retraining starts from `weights` with
/// `fit`; the change is measured against a control run — the same fit on all of `train` —
/// rather than against `weights`, so that what retraining itself moves cancels and only the
/// removal remains (with an optimum as `weights` the two agree). `progress(done, total)` is
/// called after each example. The model holds `weights` again on return. Throws
/// kprior::UsageError for an index outside `train` or sensitivities of another size.
std::vector<SingleRemoval> compare_single_removals(nn::TapedModule& model, const std::vector<torch::Tensor>& weights,
                                                   const data::Dataset& train, const std::vector<int64_t>& columns,
                                                   const Sensitivities& sens, const std::vector<int64_t>& indices,
                                                   const train::FitOptions& fit,
                                                   const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace kprior::influence
