#include "kprior/regularize/ivon_prior.h"

#include <torch/torch.h>

#include "kprior/core/error.h"

namespace kprior::regularize {

torch::Tensor IVONPrior::penalty(nn::TapedModule& model, int64_t task_size) {
  if (mean_.empty()) return {};
  return weighted_distance(model.parameters(), mean_, precision_) /
         (2.0 * static_cast<double>(task_size));
}

void IVONPrior::end_task(const Boundary& b) {
  if (b.ivon_precision.empty()) throw UsageError("ivon-prior needs IVON as the optimizer");
  precision_.clear();
  for (const auto& p : b.ivon_precision) precision_.push_back(p.detach().clone());
  mean_ = snapshot(b.model);
}

void IVONPrior::save_state(checkpoint::Tree& tree, const std::string& group) const {
  tree.put_list(group + "/precision", precision_);
  tree.put_list(group + "/mean", mean_);
}

void IVONPrior::load_state(const checkpoint::Tree& tree, const std::string& group,
                           const std::vector<memory::TaskMemory>& /*memories*/) {
  precision_ = tree.list(group + "/precision");
  mean_ = tree.list(group + "/mean");
}

}  // namespace kprior::regularize
