#include "kprior/influence/single_removal.h"

#include <torch/torch.h>

#include <string>

#include "kprior/core/error.h"
#include "kprior/influence/retrain.h"
#include "kprior/linearize/linearize.h"

namespace kprior::influence {

std::vector<SingleRemoval> compare_single_removals(nn::TapedModule& model, const std::vector<torch::Tensor>& weights,
                                                   const data::Dataset& train, const std::vector<int64_t>& columns,
                                                   const Sensitivities& sens, const std::vector<int64_t>& indices,
                                                   const train::FitOptions& fit,
                                                   const std::function<void(int64_t, int64_t)>& progress) {
  if (sens.logits.size(0) != train.size()) {
    throw UsageError("compare_single_removals: sensitivities of " + std::to_string(sens.logits.size(0)) +
                     " examples for a training set of " + std::to_string(train.size()));
  }
  for (const auto i : indices) {
    if (i < 0 || i >= train.size()) {
      throw UsageError("compare_single_removals: index " + std::to_string(i) + " is outside the training set");
    }
  }
  const auto before = torch::softmax(sens.logits, 1).to(torch::kFloat64);
  const auto after = perturbed_probabilities(sens).to(torch::kFloat64);
  const auto l1_linear = linearized_softmax_l1(sens).to(torch::kFloat64).cpu();
  // The control run: retraining on all data, whose own drift every removal run shares.
  set_weights(model, weights);
  torch::Tensor control;
  try {
    train::fit_map(model, train, columns, fit);
    control = linearize::head_probabilities(model, train.inputs, columns).to(torch::kFloat64);
  } catch (...) {
    set_weights(model, weights);  // as promised, also when the fit fails
    throw;
  }
  set_weights(model, weights);

  std::vector<SingleRemoval> out;
  out.reserve(indices.size());
  for (const auto i : indices) {
    // No test set: only the removed example's own probabilities are compared.
    const auto r = retrain_without(model, weights, train, data::Dataset{}, columns, {i}, fit);
    SingleRemoval s;
    s.index = i;
    s.label = train.targets[i].item<int64_t>();
    s.estimated = (after[i] - before[i]).cpu();
    s.retrained = (r.removed_probs[0].to(torch::kFloat64) - control[i]).cpu();
    s.estimated_l1_linear = l1_linear[i].item<double>();
    out.push_back(std::move(s));
    if (progress) progress(static_cast<int64_t>(out.size()), static_cast<int64_t>(indices.size()));
  }
  return out;
}

}  // namespace kprior::influence
