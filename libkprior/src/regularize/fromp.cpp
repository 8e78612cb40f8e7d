#include "kprior/regularize/fromp.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include "kprior/core/error.h"
#include "kprior/linearize/linearize.h"

namespace kprior::regularize {

FROMP::FROMP(FROMPOptions options) : options_(options) {
  require_positive("FROMP tau", options_.tau());
  require_positive("FROMP jitter", options_.jitter());
}

torch::Tensor fromp_quadratic(const torch::Tensor& probs, const torch::Tensor& old_probs,
                              const torch::Tensor& kinv) {
  const auto b = (probs - old_probs).t().unsqueeze(2);  // [C, M, 1]
  return 0.5 * (b * kinv.detach().bmm(b)).sum();
}

torch::Tensor FROMP::penalty(nn::TapedModule& model, int64_t /*task_size*/) {
  if (memories_.empty()) return {};
  // m(w) comes from memory_head_logits, in eval mode as every memory term (and as the
  // published code's step: model.eval() before the memory pass): the f_w that gave m̄ and
  // the kernels, without dropout noise or the memory batch's own BatchNorm statistics.
  // In fp32 even in a bf16 run: K⁻¹ (jitter down to 1e-6) would amplify bf16's rounding of
  // m(w) into a spurious pull away from m̄.
  nn::ForwardPrecisionGuard fp32(model, nn::Precision::Float32);
  torch::Tensor total;
  for (size_t s = 0; s < memories_.size(); ++s) {
    const auto p = torch::softmax(memory_head_logits(model, memories_[s]), 1);
    auto q = fromp_quadratic(p, memories_[s].old_probs, kinv_[s]);
    total = total.defined() ? total + q : q;
  }
  // τ weighs the function term against the *mean* loss, the published code's convention
  // (its τ is "scaled by a factor N": the paper's τ/N); dividing by N_t again would weaken
  // the term by the task size (~1,600x on split-MNIST-10k, measured: no protection).
  return total * options_.tau();
}

void FROMP::end_task(const Boundary& b) {
  memories_ = b.memories;  // m̄ = soft targets refreshed at this boundary
  kinv_.clear();
  for (const auto& m : memories_) {
    auto k = linearize::fromp_kernels(b.model, m.inputs, m.classes, b.variances);
    const auto eye = torch::eye(k.size(1), k.options()).unsqueeze(0);
    auto [inverse, info] = torch::linalg_inv_ex(k + options_.jitter() * eye);
    if (info.ne(0).any().item<bool>()) {
      // Two remembered examples with the same function values (duplicates, or a class the
      // model cannot tell apart) make K singular; ε is what keeps it invertible.
      throw Error("FROMP: the kernel of task " + std::to_string(m.task + 1) + "'s memory is singular with jitter " +
                  fmt::format("{:g}", options_.jitter()) +
                  " (remembered examples the model cannot tell apart); use a larger jitter (kprior-run --jitter, also with --resume)");
    }
    kinv_.push_back(inverse.detach());
  }
}

void FROMP::save_state(checkpoint::Tree& tree, const std::string& group) const {
  tree.put_list(group + "/kernel_inverse", kinv_);  // [C, M, M] per past task
}

void FROMP::load_state(const checkpoint::Tree& tree, const std::string& group,
                       const std::vector<memory::TaskMemory>& memories) {
  memories_ = memories;
  kinv_ = tree.list(group + "/kernel_inverse");
  if (kinv_.size() != memories_.size()) {
    throw FileError(tree.source(), "'" + group + "': " + std::to_string(kinv_.size()) +
                                       " kernel inverses for " + std::to_string(memories_.size()) + " memories");
  }
}

}  // namespace kprior::regularize
