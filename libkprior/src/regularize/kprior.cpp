#include "kprior/regularize/kprior.h"

#include <torch/torch.h>

#include "kprior/core/error.h"

namespace kprior::regularize {

KPrior::KPrior(KPriorOptions options) : options_(options) {
  require_non_negative("K-prior delta", options_.delta());
  require_non_negative("K-prior function weight", options_.function_weight());
}

torch::Tensor soft_cross_entropy_sum(const torch::Tensor& logits, const torch::Tensor& targets) {
  return -(targets.detach() * torch::log_softmax(logits, 1)).sum();
}

torch::Tensor KPrior::penalty(nn::TapedModule& model, int64_t task_size) {
  if (anchor_.empty()) return {};
  torch::Tensor total = 0.5 * options_.delta() * weighted_distance(model.parameters(), anchor_, {});
  for (const auto& m : memories_) {
    total = total + options_.function_weight() *
                        soft_cross_entropy_sum(memory_head_logits(model, m), m.old_probs);
  }
  return total / static_cast<double>(task_size);
}

void KPrior::end_task(const Boundary& b) {
  memories_ = b.memories;
  anchor_ = snapshot(b.model);
}

void KPrior::save_state(checkpoint::Tree& tree, const std::string& group) const {
  tree.put_list(group + "/anchor", anchor_);
}

void KPrior::load_state(const checkpoint::Tree& tree, const std::string& group,
                        const std::vector<memory::TaskMemory>& memories) {
  memories_ = memories;
  anchor_ = tree.list(group + "/anchor");
}

}  // namespace kprior::regularize
