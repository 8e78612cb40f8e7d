#include "kprior/influence/class_removal.h"

#include <torch/torch.h>

#include <cmath>

#include "kprior/core/error.h"
#include "kprior/train/map_fit.h"

namespace kprior::influence {

std::vector<int64_t> indices_of_class(const torch::Tensor& labels, int64_t label) {
  const auto y = labels.to(torch::kLong).cpu().contiguous();
  std::vector<int64_t> out;
  const auto* p = y.data_ptr<int64_t>();
  for (int64_t i = 0; i < y.numel(); ++i) {
    if (p[i] == label) out.push_back(i);
  }
  return out;
}

std::vector<ClassEstimate> class_estimates(const Sensitivities& s, const torch::Tensor& labels,
                                           int64_t num_classes) {
  if (labels.numel() != s.nll.numel()) {
    throw UsageError("class_estimates: one label per example of the sensitivities expected");
  }
  const auto y = labels.to(torch::kLong).to(s.nll.device());
  const auto nll = s.nll.to(torch::kFloat64), loo = s.loo_nll.to(torch::kFloat64);
  std::vector<ClassEstimate> out;
  for (int64_t c = 0; c < num_classes; ++c) {
    const auto mask = y.eq(c);
    const auto count = mask.sum().item<int64_t>();
    if (count == 0) continue;
    ClassEstimate e;
    e.label = c;
    e.removed = count;
    e.train_nll = nll.masked_select(mask).mean().item<double>();
    // Over the examples that have an estimate (a singular GLM-form solve has none).
    const auto estimated = loo.masked_select(mask & torch::isfinite(loo));
    e.without_estimate = count - estimated.numel();
    e.estimated_nll = estimated.numel() > 0 ? estimated.mean().item<double>() : std::nan("");
    out.push_back(e);
  }
  return out;
}

}  // namespace kprior::influence
