#include "kprior/regularize/replay.h"

#include <torch/torch.h>

namespace kprior::regularize {

torch::Tensor Replay::penalty(nn::TapedModule& model, int64_t /*task_size*/) {
  if (memories_.empty()) return {};
  torch::Tensor total;
  int64_t count = 0;
  for (const auto& m : memories_) {
    const auto local = memory::local_labels(m);
    auto ce = torch::nn::functional::cross_entropy(
        memory_head_logits(model, m), local,
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    total = total.defined() ? total + ce : ce;
    count += m.size();
  }
  return total * (options_.weight() / static_cast<double>(count));
}

void Replay::save_state(checkpoint::Tree& /*tree*/, const std::string& /*group*/) const {}

void Replay::load_state(const checkpoint::Tree& /*tree*/, const std::string& /*group*/,
                        const std::vector<memory::TaskMemory>& memories) {
  memories_ = memories;
}

}  // namespace kprior::regularize
