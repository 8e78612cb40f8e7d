#pragma once
// The memory of past tasks: per task, the remembered inputs with their labels, selection
// scores, and the model's probabilities on them at the end of the most recent task (soft
// targets, FROMP's m̄). Selection follows METHODS.md §3.
#include <torch/types.h>

#include <string>
#include <vector>

#include "kprior/data/task_sequence.h"
#include "kprior/nn/layer_tape.h"

namespace kprior::memory {

enum class Selection { LambdaTrace, MPE, Random };
/// "lambda", "mpe" or "random" (throws kprior::UsageError otherwise).
Selection parse_selection(const std::string& name);
std::string to_string(Selection s);

struct TaskMemory {
  int64_t task = 0;
  std::vector<int64_t> classes;  // the task's head (output columns)
  torch::Tensor inputs;          // [M, ...]
  torch::Tensor labels;          // [M] global class ids
  torch::Tensor scores;          // [M] selection scores
  torch::Tensor old_probs;       // [M, |head|] softmax over the head at the last boundary
  /// [M] positions of the examples in the task's training set (int64, CPU). Set by
  /// select_memory and checkpointed; undefined for memories from files written before it.
  torch::Tensor indices;
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

/// Picks `per_task` examples of `task`'s training data (per_task / |classes| per class, the
/// remainder one each to the first classes of the head; a class with fewer examples gives all
/// it has and the others fill its slots: memory::class_quotas) by the score `how`. `variances` (aligned with
/// model.parameters()) are needed for MPE only. Soft targets are filled in.
TaskMemory select_memory(nn::TapedModule& model, const data::Task& task, int64_t per_task,
                         Selection how, uint64_t seed,
                         const std::vector<torch::Tensor>& variances = {});

/// The labels of `m` as positions in its head (for losses on the head's logits).
torch::Tensor local_labels(const TaskMemory& m);

/// Every training example of a task scored as the memory selection sees it: the scores of all
/// three selections and the linearized predictive variance on the task's head.
struct ExampleScores {
  torch::Tensor labels;          // [N] global class ids
  torch::Tensor lambda_trace;    // [N] Tr Λ (FROMP)
  torch::Tensor logit_variance;  // [N] Σ_k v_k, v = diag(JΣJᵀ) over the head; undefined without Σ
  torch::Tensor mpe;             // [N] Σ_k |e_k λ_k v_k|; undefined without Σ
};

/// Scores `task`'s training examples with the model as it is and the posterior variances
/// `variances` (aligned with model.parameters(); may be empty: then only Tr Λ). CPU tensors.
ExampleScores score_examples(nn::TapedModule& model, const data::Task& task,
                             const std::vector<torch::Tensor>& variances);

/// Recomputes every memory's old_probs with the current model (at a task boundary).
void refresh_soft_targets(nn::TapedModule& model, std::vector<TaskMemory>& memories);

}  // namespace kprior::memory
