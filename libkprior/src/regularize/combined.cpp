#include "kprior/regularize/combined.h"

#include <torch/torch.h>

#include "kprior/regularize/ewc.h"
#include "kprior/regularize/kprior.h"

namespace kprior::regularize {

torch::Tensor Combined::penalty(nn::TapedModule& model, int64_t task_size) {
  if (anchor_.empty()) return {};
  torch::Tensor total = 0.5 * options_.weight_lambda() *
                        weighted_distance(model.parameters(), anchor_, fisher_);
  for (const auto& m : memories_) {
    const auto logits = memory_head_logits(model, m);
    if (options_.function()) total = total + soft_cross_entropy_sum(logits, m.old_probs);
    if (options_.replay()) {
      const auto local = memory::local_labels(m);
      const auto y = torch::one_hot(local, static_cast<int64_t>(m.classes.size())).to(logits.dtype());
      total = total + ((m.old_probs - y).detach() * logits).sum();
    }
  }
  return total / static_cast<double>(task_size);
}

void Combined::end_task(const Boundary& b) {
  // Curvature of the task's data minus the share of its remembered examples (sums add up).
  auto f = task_curvature(b.model, b.task, options_.fisher());
  const auto& mine = b.memories.back();
  const auto f_mem = linearize::curvature_diagonal(
      b.model, mine.inputs,
      memory::local_labels(mine),
      mine.classes, options_.fisher());
  for (size_t i = 0; i < f.size(); ++i) f[i] = (f[i] - f_mem[i]).clamp_min(0);
  if (fisher_.empty()) {
    fisher_ = std::move(f);
  } else {
    for (size_t i = 0; i < f.size(); ++i) fisher_[i] += f[i];
  }
  anchor_ = snapshot(b.model);
  memories_ = b.memories;
}

void Combined::save_state(checkpoint::Tree& tree, const std::string& group) const {
  tree.put_list(group + "/fisher", fisher_);
  tree.put_list(group + "/anchor", anchor_);
}

void Combined::load_state(const checkpoint::Tree& tree, const std::string& group,
                          const std::vector<memory::TaskMemory>& memories) {
  memories_ = memories;
  fisher_ = tree.list(group + "/fisher");
  anchor_ = tree.list(group + "/anchor");
}

}  // namespace kprior::regularize
