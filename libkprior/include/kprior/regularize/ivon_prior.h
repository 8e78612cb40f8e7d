#pragma once
// The Bayesian-learning-rule way to continue learning (Khan & Rue, JMLR 2023, §5): the
// previous task's IVON posterior N(m*, 1/P), P = ess·(h + δ), becomes the next task's prior:
// penalty = (1/(2 N_t)) Σ_j P_j (w_j − m*_j)². IVON's own estimate of h then includes this
// prior's curvature, so P accumulates over tasks by itself (no explicit sum, unlike EWC).
#include "kprior/regularize/regularizer.h"

namespace kprior::regularize {

class IVONPrior : public Regularizer {
 public:
  std::string name() const override { return "ivon-prior"; }
  torch::Tensor penalty(nn::TapedModule& model, int64_t task_size) override;
  void end_task(const Boundary& b) override;
  void save_state(checkpoint::Tree& tree, const std::string& group) const override;
  void load_state(const checkpoint::Tree& tree, const std::string& group,
                  const std::vector<memory::TaskMemory>& memories) override;

 private:
  std::vector<torch::Tensor> precision_, mean_;
};

}  // namespace kprior::regularize
