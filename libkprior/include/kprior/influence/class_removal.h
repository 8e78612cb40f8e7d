#pragma once
// "What if class c had not been in the training data?" (MPE, Nickl et al., NeurIPS 2023,
// Fig. 1; METHODS.md §5): per class, the estimated NLL of its training examples each
// perturbed by its leave-one-out deviation (the published estimate), beside the trivial
// predictor — the class's plain training NLL. The set form's effect of removing a class
// (estimate_set_effect with indices_of_class) is in set_removal.h.
#include <torch/types.h>

#include <vector>

#include "kprior/data/dataset.h"
#include "kprior/influence/sensitivity.h"
#include "kprior/influence/set_removal.h"

namespace kprior::influence {

struct ClassEstimate {
  int64_t label = 0;
  int64_t removed = 0;           ///< training examples of the class
  double train_nll = 0;          ///< mean −log p_i(y_i): the trivial predictor
  double estimated_nll = 0;      ///< mean MPE leave-one-out NLL of the class's examples that have one
  int64_t without_estimate = 0;  ///< of them without (a non-finite loo_nll); NaN mean if all
};

/// One entry per label in `labels` (positions in the head, as the sensitivities were
/// computed), for every label 0..num_classes−1 that occurs. Pure arithmetic on `s`.
std::vector<ClassEstimate> class_estimates(const Sensitivities& s, const torch::Tensor& labels,
                                           int64_t num_classes);

/// Indices of the examples with label `label` (positions in the head).
std::vector<int64_t> indices_of_class(const torch::Tensor& labels, int64_t label);

}  // namespace kprior::influence
