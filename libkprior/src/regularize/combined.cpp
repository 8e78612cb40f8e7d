#include "kprior/regularize/combined.h"

#include <torch/torch.h>

#include "kprior/checkpoint/objects.h"
#include "kprior/core/error.h"
#include "kprior/core/random.h"
#include "kprior/regularize/ewc.h"
#include "kprior/regularize/kprior.h"

namespace kprior::regularize {

Combined::Combined(CombinedOptions options) : options_(options) {
  require_non_negative("ewc+fr+replay delta", options_.delta());
  require_non_negative("ewc+fr+replay weight lambda", options_.weight_lambda());
}

torch::Tensor Combined::penalty(nn::TapedModule& model, int64_t task_size) {
  if (anchor_.empty()) return {};
  torch::Tensor total = 0.5 * options_.weight_lambda() *
                        weighted_distance(model.parameters(), anchor_, fisher_);
  for (size_t s = 0; s < replay_memories_.size(); ++s) {
    const auto& m = replay_memories_[s];
    const auto logits = memory_head_logits(model, m);
    // On M2 the function and error terms add up to replay: gradient J(p − p_old) + J(p_old − y).
    // The error term alone is linear in f and unbounded below, so it never goes without the other.
    if (options_.function()) total = total + soft_cross_entropy_sum(logits, m.old_probs);
    if (options_.replay()) {
      total = total + ((m.old_probs - replay_targets_[s].to(logits.dtype())).detach() * logits).sum();
    }
  }
  if (options_.function()) {
    for (const auto& m : memories_) total = total + soft_cross_entropy_sum(memory_head_logits(model, m), m.old_probs);
  }
  return total / static_cast<double>(task_size);
}

void Combined::end_task(const Boundary& b) {
  const auto& mine = b.memories.back();
  auto m2 = memory::select_memory(b.model, b.task, mine.size(), memory::Selection::Random,
                                  mix_seed(options_.seed(), 5000 + static_cast<uint64_t>(b.task.id)));
  // Curvature of the task's data minus the share of both memories (sums add up; an example
  // in both is subtracted twice, hence the clamp).
  auto f = task_curvature(b.model, b.task, options_.fisher());
  for (const memory::TaskMemory* m : {&mine, static_cast<const memory::TaskMemory*>(&m2)}) {
    const auto f_mem = linearize::curvature_diagonal(b.model, m->inputs, memory::local_labels(*m), m->classes,
                                                     options_.fisher());
    for (size_t i = 0; i < f.size(); ++i) f[i] = f[i] - f_mem[i];
  }
  for (auto& x : f) x.clamp_min_(0);
  if (fisher_.empty()) {
    fisher_ = std::move(f);
    for (auto& x : fisher_) x.add_(options_.delta());  // the prior, counted once
  } else {
    for (size_t i = 0; i < f.size(); ++i) fisher_[i] += f[i];
  }
  anchor_ = snapshot(b.model);
  memories_ = b.memories;
  replay_memories_.push_back(std::move(m2));
  memory::refresh_soft_targets(b.model, replay_memories_);
  cache_replay_targets();
}

void Combined::cache_replay_targets() {
  replay_targets_.clear();
  for (const auto& m : replay_memories_) {
    replay_targets_.push_back(torch::one_hot(memory::local_labels(m), static_cast<int64_t>(m.classes.size())));
  }
}

void Combined::save_state(checkpoint::Tree& tree, const std::string& group) const {
  tree.put_list(group + "/fisher", fisher_);
  tree.put_list(group + "/anchor", anchor_);
  for (size_t s = 0; s < replay_memories_.size(); ++s) {
    checkpoint::put_memory(tree, group + "/replay_memory/task_" + std::to_string(s), replay_memories_[s]);
  }
}

void Combined::load_state(const checkpoint::Tree& tree, const std::string& group,
                          const std::vector<memory::TaskMemory>& memories) {
  memories_ = memories;
  fisher_ = tree.list(group + "/fisher");
  anchor_ = tree.list(group + "/anchor");
  replay_memories_.clear();
  for (size_t s = 0; s < memories.size(); ++s) {
    replay_memories_.push_back(checkpoint::get_memory(tree, group + "/replay_memory/task_" + std::to_string(s)));
  }
  cache_replay_targets();
}

}  // namespace kprior::regularize
