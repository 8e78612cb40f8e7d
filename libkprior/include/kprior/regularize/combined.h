#pragma once
// EWC + functional regularisation + replay (Daxberger et al., "Improving continual learning by
// accurate gradient reconstructions of the past", TMLR 2023; METHODS.md §4), all divided by N_t:
//   weight term     ½ Σ_j F_j (w_j − w*_j)², F the curvature of the past data *not* in memory
//                   (accumulated online; the memory's own share is subtracted);
//   function term   Σ_{i∈M} ℓ(σ(f_{w*}(x_i)), f_w(x_i))          (gradient J_iᵀ(p_i − p_old,i));
//   error term      Σ_{i∈M} (p_old,i − y_i)ᵀ f_w(x_i)             (gradient J_iᵀ(p_old,i − y_i)).
// On a remembered point the last two add up to the exact gradient of its loss, J_iᵀ(p_i − y_i).
#include "kprior/linearize/linearize.h"
#include "kprior/regularize/regularizer.h"

namespace kprior::regularize {

struct CombinedOptions {
  TORCH_ARG(linearize::Curvature, fisher) = linearize::Curvature::GGN;
  TORCH_ARG(double, weight_lambda) = 1.0;
  TORCH_ARG(bool, replay) = true;    ///< include the error-correction term
  TORCH_ARG(bool, function) = true;  ///< include the function term
};

class Combined : public Regularizer {
 public:
  explicit Combined(CombinedOptions options = {}) : options_(options) {}
  bool needs_memory() const override { return true; }
  std::string name() const override { return "ewc+fr+replay"; }
  torch::Tensor penalty(nn::TapedModule& model, int64_t task_size) override;
  void end_task(const Boundary& b) override;
  void save_state(checkpoint::Tree& tree, const std::string& group) const override;
  void load_state(const checkpoint::Tree& tree, const std::string& group,
                  const std::vector<memory::TaskMemory>& memories) override;

 private:
  CombinedOptions options_;
  std::vector<memory::TaskMemory> memories_;
  std::vector<torch::Tensor> fisher_, anchor_;
};

}  // namespace kprior::regularize
