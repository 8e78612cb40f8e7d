#include "kprior/regularize/replay.h"

#include <torch/torch.h>

#include "kprior/core/error.h"

namespace kprior::regularize {

Replay::Replay(ReplayOptions options) : options_(options) {
  require_non_negative("replay weight", options_.weight());
}

torch::Tensor Replay::penalty(nn::TapedModule& model, int64_t /*task_size*/) {
  if (memories_.empty()) return {};
  torch::Tensor total;
  int64_t count = 0;
  for (size_t s = 0; s < memories_.size(); ++s) {
    const auto& m = memories_[s];
    auto ce = torch::nn::functional::cross_entropy(
        memory_head_logits(model, m), local_labels_[s],
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    total = total.defined() ? total + ce : ce;
    count += m.size();
  }
  return total * (options_.weight() / static_cast<double>(count));
}

void Replay::set_memories(const std::vector<memory::TaskMemory>& memories) {
  memories_ = memories;
  local_labels_.clear();
  for (const auto& m : memories_) local_labels_.push_back(memory::local_labels(m));
}

void Replay::save_state(checkpoint::Tree& /*tree*/, const std::string& /*group*/) const {}

void Replay::load_state(const checkpoint::Tree& /*tree*/, const std::string& /*group*/,
                        const std::vector<memory::TaskMemory>& memories) {
  set_memories(memories);
}

}  // namespace kprior::regularize
