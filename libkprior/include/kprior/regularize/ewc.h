#pragma once
// Elastic weight consolidation (Kirkpatrick et al., PNAS 2017; METHODS.md §4):
// penalty = λ/(2 N_t) Σ_j F_j (w_j − w*_j)², with F a curvature diagonal *summed* over the
// past task's data (so λ = 1 is the Laplace/Bayesian weighting of the past task's loss).
#include "kprior/linearize/linearize.h"
#include "kprior/regularize/regularizer.h"

namespace kprior::regularize {

struct EWCOptions {
  TORCH_ARG(double, lambda) = 1.0;
  /// Fisher estimator: GGN (softmax Λ), EmpiricalFisher (observed labels), TrueFisher
  /// (expectation over the model's labels, which for softmax equals the GGN).
  TORCH_ARG(linearize::Curvature, fisher) = linearize::Curvature::GGN;
  /// Online EWC (Schwarz et al., ICML 2018): one accumulated F, anchored at the latest w*.
  /// Offline: one (F_s, w*_s) per past task.
  TORCH_ARG(bool, online) = true;
  // With IVON the previous posterior's precision ess·(h + δ) already holds every past task's
  // curvature (IVON's h estimates the penalised objective's), so summing it over tasks as EWC
  // sums Fishers would count the past twice: that form is IVONPrior (ivon_prior.h).
};

class EWC : public Regularizer {
 public:
  /// Throws UsageError for a NaN, infinite or out-of-range setting.
  explicit EWC(EWCOptions options = {});
  std::string name() const override { return "ewc"; }
  torch::Tensor penalty(nn::TapedModule& model, int64_t task_size) override;
  void end_task(const Boundary& b) override;
  void save_state(checkpoint::Tree& tree, const std::string& group) const override;
  void load_state(const checkpoint::Tree& tree, const std::string& group,
                  const std::vector<memory::TaskMemory>& memories) override;
  /// Curvature per past task (offline) or the accumulated one (online).
  const std::vector<std::vector<torch::Tensor>>& fishers() const { return fishers_; }

 private:
  EWCOptions options_;
  std::vector<std::vector<torch::Tensor>> fishers_, anchors_;
};

/// The curvature diagonal of `task`'s training data (summed over examples). For a streamed
/// task, the sum over its in-memory sample scaled to the whole training set
/// (Task::train_sum_weight), so EWC's λ/(2N) and the Laplace precision weigh it as the full
/// task.
std::vector<torch::Tensor> task_curvature(nn::TapedModule& model, const data::Task& task,
                                          linearize::Curvature kind);

}  // namespace kprior::regularize
