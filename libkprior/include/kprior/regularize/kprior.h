#pragma once
// Knowledge-adaptation prior (Khan & Swaroop, NeurIPS 2021, eq. 5; METHODS.md §4):
// K(w) = Σ_{i∈M} ℓ(σ(f_{w*}(x_i)), f_w(x_i)) + (δ/2) ‖w − w*‖², the soft-label
// cross-entropy on the memory plus a weight term, with w* and the soft labels taken at the
// last task boundary; penalty = K(w)/N_t. Its gradient Σ_M J_iᵀ(σ(f_w) − σ(f_{w*})) + δ(w − w*)
// reproduces the past data's full-batch gradient for a GLM when M is all past data.
#include "kprior/regularize/regularizer.h"

namespace kprior::regularize {

struct KPriorOptions {
  TORCH_ARG(double, delta) = 0.1;          ///< δ of the weight term (prior precision)
  TORCH_ARG(double, function_weight) = 1.0;  ///< multiplies the memory term (M stands for more data)
};

class KPrior : public Regularizer {
 public:
  /// Throws UsageError for a NaN, infinite or out-of-range setting.
  explicit KPrior(KPriorOptions options = {});
  bool needs_memory() const override { return true; }
  std::string name() const override { return "kprior"; }
  torch::Tensor penalty(nn::TapedModule& model, int64_t task_size) override;
  void end_task(const Boundary& b) override;
  void save_state(checkpoint::Tree& tree, const std::string& group) const override;
  void load_state(const checkpoint::Tree& tree, const std::string& group,
                  const std::vector<memory::TaskMemory>& memories) override;

 private:
  KPriorOptions options_;
  std::vector<memory::TaskMemory> memories_;
  std::vector<torch::Tensor> anchor_;
};

/// Σ_i CE(soft targets, logits) = −Σ_i Σ_k q_ik log softmax(f_i)_k.
torch::Tensor soft_cross_entropy_sum(const torch::Tensor& logits, const torch::Tensor& targets);

}  // namespace kprior::regularize
