#include "kprior/regularize/ewc.h"

#include <torch/torch.h>

#include "kprior/core/error.h"

namespace kprior::regularize {

EWC::EWC(EWCOptions options) : options_(options) {
  require_non_negative("EWC lambda", options_.lambda());
}

std::vector<torch::Tensor> task_curvature(nn::TapedModule& model, const data::Task& task,
                                          linearize::Curvature kind) {
  auto sum = linearize::curvature_diagonal(model, task.train.inputs,
                                           data::head_targets(task, task.train.targets),
                                           task.classes, kind);
  const double weight = task.train_sum_weight();
  if (weight != 1.0) {
    for (auto& s : sum) s.mul_(weight);
  }
  return sum;
}

torch::Tensor EWC::penalty(nn::TapedModule& model, int64_t task_size) {
  if (fishers_.empty()) return {};
  const auto params = model.parameters();
  torch::Tensor total;
  for (size_t s = 0; s < fishers_.size(); ++s) {
    auto d = weighted_distance(params, anchors_[s], fishers_[s]);
    total = total.defined() ? total + d : d;
  }
  return total * (options_.lambda() / (2.0 * static_cast<double>(task_size)));
}

void EWC::end_task(const Boundary& b) {
  auto f = task_curvature(b.model, b.task, options_.fisher());
  if (options_.online() && !fishers_.empty()) {
    for (size_t i = 0; i < f.size(); ++i) fishers_[0][i] += f[i];
    anchors_[0] = snapshot(b.model);
  } else {
    fishers_.push_back(std::move(f));
    anchors_.push_back(snapshot(b.model));
  }
}

void EWC::save_state(checkpoint::Tree& tree, const std::string& group) const {
  tree.put_attr(group + "@terms", static_cast<int64_t>(fishers_.size()));
  for (size_t s = 0; s < fishers_.size(); ++s) {
    tree.put_list(group + "/fisher_" + std::to_string(s), fishers_[s]);
    tree.put_list(group + "/anchor_" + std::to_string(s), anchors_[s]);
  }
}

void EWC::load_state(const checkpoint::Tree& tree, const std::string& group,
                     const std::vector<memory::TaskMemory>& /*memories*/) {
  fishers_.clear();
  anchors_.clear();
  for (int64_t s = 0; s < tree.integer(group + "@terms"); ++s) {
    fishers_.push_back(tree.list(group + "/fisher_" + std::to_string(s)));
    anchors_.push_back(tree.list(group + "/anchor_" + std::to_string(s)));
  }
}

}  // namespace kprior::regularize
