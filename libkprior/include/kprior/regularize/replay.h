#pragma once
// Replay (METHODS.md §4): the cross-entropy of the remembered examples with their true labels,
// averaged over all memories and added to the loss with `weight` (1 = a replay batch weighed
// like a batch of the current task).
#include "kprior/regularize/regularizer.h"

namespace kprior::regularize {

struct ReplayOptions {
  TORCH_ARG(double, weight) = 1.0;
};

class Replay : public Regularizer {
 public:
  /// Throws UsageError for a NaN, infinite or out-of-range setting.
  explicit Replay(ReplayOptions options = {});
  bool needs_memory() const override { return true; }
  std::string name() const override { return "replay"; }
  torch::Tensor penalty(nn::TapedModule& model, int64_t task_size) override;
  void end_task(const Boundary& b) override { set_memories(b.memories); }
  void save_state(checkpoint::Tree& tree, const std::string& group) const override;
  void load_state(const checkpoint::Tree& tree, const std::string& group,
                  const std::vector<memory::TaskMemory>& memories) override;

 private:
  void set_memories(const std::vector<memory::TaskMemory>& memories);

  ReplayOptions options_;
  std::vector<memory::TaskMemory> memories_;
  std::vector<torch::Tensor> local_labels_;  // per memory, made once: no device sync per step
};

}  // namespace kprior::regularize
