#pragma once
// One interface for every continual-learning regularizer (METHODS.md §4): a penalty added to
// the loss of each step on the current task, and an update when a task ends. The training
// loss is the mean over the current task's N_t examples, so penalties that stand for a
// summed loss over past data are divided by N_t. Regularizers combine by summation.
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "kprior/checkpoint/tree.h"
#include "kprior/data/task_sequence.h"
#include "kprior/memory/memory_store.h"
#include "kprior/nn/layer_tape.h"

namespace kprior::regularize {

/// What a regularizer sees when task `task` has been trained.
struct Boundary {
  nn::TapedModule& model;
  const data::Task& task;
  /// Memories of tasks 0..task, soft targets refreshed with the current model.
  const std::vector<memory::TaskMemory>& memories;
  /// Posterior variances Σ aligned with model.parameters() (IVON's, else the recursive
  /// diagonal GGN Laplace of all tasks so far).
  const std::vector<torch::Tensor>& variances;
  /// IVON's precision ess·(h + δ) per parameter when the optimizer is IVON, else empty.
  const std::vector<torch::Tensor>& ivon_precision;
};

class Regularizer {
 public:
  virtual ~Regularizer() = default;
  virtual std::string name() const = 0;
  /// The penalty for one step on a task of `task_size` examples; undefined when there is
  /// nothing to regularize yet (first task).
  virtual torch::Tensor penalty(nn::TapedModule& model, int64_t task_size) = 0;
  virtual void end_task(const Boundary& boundary) = 0;
  /// Whether end_task reads Boundary::variances (the learner computes them only if needed).
  virtual bool needs_variances() const { return false; }
  /// Whether the learner must keep a memory of past tasks for this regularizer.
  virtual bool needs_memory() const { return false; }
  /// Writes what end_task accumulated under `group` of a checkpoint tree (memories are the
  /// learner's and are not repeated here).
  virtual void save_state(checkpoint::Tree& tree, const std::string& group) const = 0;
  /// Restores what save_state wrote; `memories` are the learner's restored memories.
  virtual void load_state(const checkpoint::Tree& tree, const std::string& group,
                          const std::vector<memory::TaskMemory>& memories) = 0;
};

/// Whether any of `regs` needs a memory of past tasks; throws UsageError naming the first one
/// that does when `memory_per_task` is 0.
bool needs_memory(const std::vector<std::unique_ptr<Regularizer>>& regs, int64_t memory_per_task);

/// The logits of `m`'s head for its remembered inputs, from the network in eval mode (no
/// dropout; BatchNorm on its running statistics, which this pass does not update) whatever
/// mode the model is in: every memory term sees the f_w its soft targets were computed with.
torch::Tensor memory_head_logits(nn::TapedModule& model, const memory::TaskMemory& m);

/// Σ_j w_j (θ_j − anchor_j)² over the model's parameters.
torch::Tensor weighted_distance(const std::vector<torch::Tensor>& params,
                                const std::vector<torch::Tensor>& anchor,
                                const std::vector<torch::Tensor>& weights);

/// Detached copies of the model's parameters.
std::vector<torch::Tensor> snapshot(nn::TapedModule& model);

}  // namespace kprior::regularize
