#pragma once
// IVON — Improved Variational Online Newton (Shen et al., "Variational Learning is Effective
// for Large Deep Networks", ICML 2024, Algorithm 1), an instance of the Bayesian learning rule
// (Khan & Rue, JMLR 2023). A drop-in replacement for Adam that also learns a diagonal
// Gaussian posterior q(w) = N(m, diag σ²) with σ² = 1 / (ess · (h + δ)).
//
// Usage (one MC sample per step, the common case):
//
//   kprior::optim::IVON opt(model->parameters(), IVONOptions(/*lr=*/0.1, /*ess=*/N));
//   for (auto& batch : loader) {
//     {
//       auto sample = opt.sampled_params(/*train=*/true);  // writes θ = m + σ⊙ε
//       auto loss = torch::nn::functional::cross_entropy(model->forward(batch.inputs), batch.targets);
//       loss.backward();
//     }                                                      // records ĝ, restores m
//     opt.step();
//   }
//
// or `opt.step(closure)`, which draws mc_samples samples itself. The gradient recorded is the
// one present when the guard is destroyed: clip or change gradients inside its block.
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <vector>

#include "kprior/posterior/diagonal_gaussian.h"

namespace kprior::optim {

/// How IVON estimates the Hessian diagonal from one sample (METHODS.md §1, step 2).
enum class HessApprox {
  Price,   ///< reparameterisation (Price's theorem): ĝ ⊙ (θ − m) / σ²   (the paper's default)
  GradSq,  ///< squared gradient: ĝ²  (a Gauss–Newton-like, always non-negative estimate)
};

/// Returns the noise ε ~ N(0, I) for parameter `param` of group `group`, shaped like `like`
/// (same dtype and device). Inject one to replay a run exactly or to test the update.
using NoiseSource =
    std::function<torch::Tensor(size_t group, size_t param, const torch::Tensor& like)>;

/// Options of IVON. Fields marked [group] may differ between parameter groups; the others are
/// read from the optimizer's defaults only. Defaults are those of the published `ivon` package
/// (Shen et al. 2024; the paper's Algorithm 1 is rescale_lr(false); the ImageNet/CIFAR recipes
/// are in METHODS.md §1).
struct IVONOptions : public torch::optim::OptimizerCloneableOptions<IVONOptions> {
  /// `lr` (α, required) and `ess` (λ, the effective sample size, required; set it to the
  /// training-set size N for a posterior of the data).
  IVONOptions(double lr, double ess);

  TORCH_ARG(double, lr);                      ///< [group] α, learning rate. > 0.
  TORCH_ARG(double, ess);                     ///< [group] λ, effective sample size. > 0.
  TORCH_ARG(double, hess_init) = 1.0;         ///< [group] h0, initial Hessian value. > 0.
  TORCH_ARG(double, beta1) = 0.9;             ///< [group] momentum of the gradient, in [0, 1].
  TORCH_ARG(double, beta2) = 0.99999;         ///< [group] momentum of the Hessian, in [0, 1].
  TORCH_ARG(double, weight_decay) = 1e-4;     ///< [group] δ, prior precision per ess. >= 0.
  /// [group] ρ: elementwise clip of the preconditioned step (step 5). > 0; +inf disables.
  TORCH_ARG(double, clip_radius) = std::numeric_limits<double>::infinity();
  TORCH_ARG(int64_t, mc_samples) = 1;         ///< samples drawn by step(closure). >= 1.
  TORCH_ARG(HessApprox, hess_approx) = HessApprox::Price;
  TORCH_ARG(bool, debias) = true;             ///< divide the momentum by 1 − β1^t.
  TORCH_ARG(bool, rescale_lr) = true;         ///< use α (h0 + δ) as the step size.
  /// Seed of the default noise. Fused CPU parameters draw from kprior's counter-based
  /// Ziggurat stream (same numbers for any thread count); the others from a torch::Generator
  /// on their device, one normal_ over all their elements per sample, split into views.
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(NoiseSource, noise) = nullptr;    ///< overrides the default generator if set.
  /// Use fused single-pass loops for contiguous float/double CPU parameters (faster);
  /// false forces the multi-tensor-operation path that CUDA parameters always take.
  TORCH_ARG(bool, fused_cpu) = true;

 public:
  double get_lr() const override { return lr_; }
  void set_lr(const double lr) override { lr_ = lr; }
  /// Throws kprior::UsageError naming the first invalid field.
  void validate() const;
};

class IVON;

/// RAII guard of one Monte-Carlo sample (see IVON::sampled_params). Movable, not copyable.
class SampleGuard {
 public:
  SampleGuard(SampleGuard&& other) noexcept;
  SampleGuard& operator=(SampleGuard&&) = delete;
  SampleGuard(const SampleGuard&) = delete;
  SampleGuard& operator=(const SampleGuard&) = delete;
  /// Restores the mean. With train=true and no exception in flight, first records the
  /// sample's gradient ĝ (0 where a parameter got none) and (θ − m) ⊙ ĝ (or ĝ²) as running
  /// means over the samples since the last step.
  ~SampleGuard();

 private:
  friend class IVON;
  SampleGuard(IVON* owner, bool train);
  IVON* owner_;
  bool train_;
  int uncaught_;
};

/// The IVON optimizer. Derives from torch::optim::Optimizer, so zero_grad(), param_groups()
/// and torch::save/torch::load(optimizer, ...) work as with Adam. Parameters with
/// requires_grad = false are never perturbed or updated.
class IVON : public torch::optim::Optimizer {
 public:
  IVON(std::vector<torch::optim::OptimizerParamGroup> groups, IVONOptions defaults);
  IVON(std::vector<torch::Tensor> params, IVONOptions defaults);

  /// Writes θ = m + σ ⊙ ε into the parameters and returns the guard that restores m.
  /// train = true: a training sample, whose gradient the guard records for the next step();
  /// gradients of the sampled parameters are zeroed first, so it is this sample's alone.
  /// train = false (the default, as in the published `sampled_params(train=False)`): a
  /// prediction sample (e.g. one term of a Bayesian model average); nothing is recorded and
  /// gradients are left as they are. Only one sample may be active at a time.
  SampleGuard sampled_params(bool train = false);

  /// Without a closure: one update from the samples recorded since the last step (throws
  /// kprior::Error if there are none). With a closure (which must zero gradients, run the
  /// forward and backward and return the loss): draws mc_samples samples, then updates;
  /// returns the mean loss over the samples.
  torch::Tensor step(LossClosure closure = nullptr) override;

  /// Number of updates so far (t in the paper; used for debiasing).
  int64_t step_count() const { return step_count_; }
  /// Samples recorded since the last step.
  int64_t pending_samples() const { return samples_; }

  /// The current posterior over the trainable parameters, in group and parameter order:
  /// mean m and variance σ² = 1 / (ess · (h + δ)) with each group's ess and δ.
  posterior::DiagonalGaussian posterior() const;
  /// The trainable parameters the posterior covers, in the same order.
  std::vector<torch::Tensor> trainable_params() const;
  /// Hessian estimate h per trainable parameter (same order).
  std::vector<torch::Tensor> hessian() const;
  /// Gradient momentum g per trainable parameter (same order).
  std::vector<torch::Tensor> momentum() const;

  /// Saves m, h, momentum, step count, every option but `noise` and `fused_cpu`, and the noise generator's state.
  void save(torch::serialize::OutputArchive& archive) const override;
  /// Restores what save() wrote; state moves to each parameter's device and dtype; m is
  /// copied into the parameters. Throws kprior::Error when the archive does not match
  /// this optimizer's groups and shapes.
  void load(torch::serialize::InputArchive& archive) override;

 private:
  friend class SampleGuard;
  struct ParamState {
    torch::Tensor momentum;   // g
    torch::Tensor hess;       // h
    torch::Tensor grad_sum;   // Σ_s ĝ_s since the last step
    torch::Tensor nxg_sum;    // Σ_s (θ_s − m) ⊙ ĝ_s (price) or Σ_s ĝ_s² (gradsq)
    torch::Tensor saved_mean; // m while a sample is written into the parameter
  };

  const IVONOptions& global() const;
  const IVONOptions& group_options(size_t group) const;
  // Grows the state to every parameter (lazily: also for groups added after construction)
  // and moves it to each parameter's dtype and device (a model moved after the optimizer was
  // built). Logically const: the state is a cache of h0 and zeros until the first step.
  void ensure_state() const;
  void ensure_generator(const torch::Device& device);
  // The user's noise source for one parameter (IVONOptions::noise).
  torch::Tensor draw_noise(size_t group, size_t param, const torch::Tensor& like);
  // Default noise for the multi-tensor path: *eps[i] ← ε shaped and laid out like *params[i].
  void draw_noise_flat(const std::vector<torch::Tensor*>& params,
                       const std::vector<torch::Tensor*>& eps);
  void begin_sample(bool train);
  void end_sample(bool record);
  void update();

  mutable std::vector<std::vector<ParamState>> state_by_group_;
  int64_t step_count_ = 0;
  int64_t samples_ = 0;
  uint64_t noise_draws_ = 0;  // samples drawn so far: the counter of the streamed noise
  bool sampling_ = false;
  torch::optional<torch::Generator> generator_;
};

}  // namespace kprior::optim
