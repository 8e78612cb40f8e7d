#include "kprior/regularize/regularizer.h"

#include <torch/torch.h>

#include "kprior/core/error.h"

namespace kprior::regularize {

bool needs_memory(const std::vector<std::unique_ptr<Regularizer>>& regs, int64_t memory_per_task) {
  for (const auto& r : regs) {
    if (!r->needs_memory()) continue;
    if (memory_per_task == 0) throw UsageError("method " + r->name() + " needs a memory: memory_per_task must be > 0 (kprior-run --memory-per-task)");
    return true;
  }
  return false;
}

torch::Tensor memory_head_logits(nn::TapedModule& model, const memory::TaskMemory& m) {
  // The memory terms are functions of the deterministic network f_w (METHODS.md §4: K-prior's
  // Σ ℓ(σ(f_{w*}), f_w) is minimised at w = w* only if f_w is the f that gave the soft targets,
  // which the boundary computes in eval mode). In train mode dropout would add noise to every
  // memory term, and BatchNorm would normalise each task's memory by its own statistics and
  // fold them into the running statistics once per past task and step.
  nn::EvalModeGuard eval(model);
  return model.forward(m.inputs).index_select(1, data::head_columns(m.classes, m.inputs.device()));
}

torch::Tensor weighted_distance(const std::vector<torch::Tensor>& params,
                                const std::vector<torch::Tensor>& anchor,
                                const std::vector<torch::Tensor>& weights) {
  if (params.size() != anchor.size() || (!weights.empty() && weights.size() != params.size())) {
    throw UsageError("weighted_distance: parameter, anchor and weight counts differ");
  }
  torch::Tensor total;
  for (size_t i = 0; i < params.size(); ++i) {
    auto d = (params[i] - anchor[i]).square();
    if (!weights.empty()) d = d * weights[i];
    total = total.defined() ? total + d.sum() : d.sum();
  }
  return total;
}

std::vector<torch::Tensor> snapshot(nn::TapedModule& model) {
  std::vector<torch::Tensor> out;
  for (const auto& p : model.parameters()) out.push_back(p.detach().clone());
  return out;
}

}  // namespace kprior::regularize
