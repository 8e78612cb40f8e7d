#pragma once
// Functional regularisation of memorable past (FROMP; Pan et al., NeurIPS 2020, eq. 7–8;
// METHODS.md §4): penalty = (τ/2) Σ_{s,c} (m_{s,c}(w) − m̄_{s,c})ᵀ K_{s,c}⁻¹ (m_{s,c}(w) − m̄_{s,c}),
// m_{s,c}(w) the probabilities of class c on task s's memorable inputs, m̄ the same at the
// last task boundary, K_{s,c} = J⁽ᶜ⁾ Σ J⁽ᶜ⁾ᵀ + εI. K⁻¹ and m̄ are recomputed for every past
// task at every boundary. The penalty's gradient is the vector–Jacobian product
// J⁽ᶜ⁾ᵀ K⁻¹ (m − m̄) (autograd through m with K⁻¹ constant): no per-example Jacobians per step.
// The penalty is added to the task's *mean* loss ℓ̄_t, so τ here is the paper's τ divided by
// N_t — the convention of the published settings (τ 10 split MNIST, 0.5 permuted MNIST).
// m_{s,c}(w) is computed with the whole model in eval mode, as m̄ and K are (and as the
// published code's memory pass): no dropout noise in m(w) − m̄, and BatchNorm on its running
// statistics, so the memory batch's own statistics never enter the function values.
#include "kprior/regularize/regularizer.h"

namespace kprior::regularize {

struct FROMPOptions {
  TORCH_ARG(double, tau) = 10.0;     ///< τ (split MNIST 10, permuted MNIST 0.5)
  TORCH_ARG(double, jitter) = 1e-6;  ///< ε added to each kernel's diagonal
};

class FROMP : public Regularizer {
 public:
  /// Throws UsageError for a NaN, infinite or out-of-range setting.
  explicit FROMP(FROMPOptions options = {});
  bool needs_memory() const override { return true; }
  bool needs_variances() const override { return true; }
  std::string name() const override { return "fromp"; }
  torch::Tensor penalty(nn::TapedModule& model, int64_t task_size) override;
  void end_task(const Boundary& b) override;
  void save_state(checkpoint::Tree& tree, const std::string& group) const override;
  void load_state(const checkpoint::Tree& tree, const std::string& group,
                  const std::vector<memory::TaskMemory>& memories) override;
  /// The kernel inverses of task s: [C, M, M].
  const std::vector<torch::Tensor>& kernel_inverses() const { return kinv_; }

 private:
  FROMPOptions options_;
  std::vector<memory::TaskMemory> memories_;  // inputs, heads and m̄ (old_probs)
  std::vector<torch::Tensor> kinv_;
};

/// ½ Σ_c b_cᵀ K_c⁻¹ b_c with b = probs − old_probs ([M, C]) and kinv [C, M, M] (constant).
torch::Tensor fromp_quadratic(const torch::Tensor& probs, const torch::Tensor& old_probs,
                              const torch::Tensor& kinv);

}  // namespace kprior::regularize
