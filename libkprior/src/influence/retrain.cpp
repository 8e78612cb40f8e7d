#include "kprior/influence/retrain.h"

#include <torch/torch.h>

#include <chrono>

#include "kprior/core/error.h"
#include "kprior/linearize/linearize.h"

namespace kprior::influence {

std::vector<torch::Tensor> copy_weights(nn::TapedModule& model) {
  std::vector<torch::Tensor> out;
  for (const auto& p : model.parameters()) out.push_back(p.detach().clone());
  return out;
}

void set_weights(nn::TapedModule& model, const std::vector<torch::Tensor>& weights) {
  const auto params = model.parameters();
  if (params.size() != weights.size()) throw UsageError("set_weights: wrong number of tensors");
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < params.size(); ++k) params[k].copy_(weights[k]);
}

RetrainOutcome retrain_without(nn::TapedModule& model, const std::vector<torch::Tensor>& weights,
                               const data::Dataset& train, const data::Dataset& test,
                               const std::vector<int64_t>& columns,
                               const std::vector<int64_t>& indices, const train::FitOptions& fit) {
  const auto start = std::chrono::steady_clock::now();
  auto keep = torch::ones({train.size()}, torch::kBool);
  for (const auto i : indices) {
    if (i < 0 || i >= train.size()) throw UsageError("retrain_without: index " + std::to_string(i) + " out of range");
    keep[i] = false;
  }
  const auto kept = train.subset(keep.nonzero().squeeze(1).to(train.inputs.device()));
  set_weights(model, weights);
  RetrainOutcome out;
  try {
    train::fit_map(model, kept, columns, fit);
    if (test.size() > 0) {
      const auto q = train::evaluate_fit(model, test, columns);
      out.test_nll = q.nll;
      out.test_accuracy = q.accuracy;
    }
    if (!indices.empty()) {
      const auto removed = train.subset(torch::tensor(indices, torch::kLong).to(train.inputs.device()));
      torch::NoGradGuard no_grad;
      const auto logits = linearize::head_logits(model.forward(removed.inputs), columns);
      out.removed_probs = torch::softmax(logits, 1);
      out.removed_nll = train::quality_of(logits, removed.targets).nll;
    }
  } catch (...) {
    set_weights(model, weights);
    throw;
  }
  set_weights(model, weights);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace kprior::influence
