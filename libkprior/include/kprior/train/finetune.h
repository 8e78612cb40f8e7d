#pragma once
// Sequential training without any regularizer ("fine-tuning"): the baseline every
// continual-learning method is compared with, and the loop the regularized learner extends.
// Progress is reported through callbacks; nothing here prints.
#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

#include "kprior/data/task_sequence.h"
#include "kprior/metrics/accuracy_matrix.h"
#include "kprior/nn/mlp.h"

namespace kprior::train {

enum class OptimizerKind { IVON, Adam, SGD };
/// "ivon", "adam" or "sgd" (throws kprior::UsageError otherwise).
OptimizerKind parse_optimizer(const std::string& name);

struct FinetuneOptions {
  TORCH_ARG(OptimizerKind, optimizer) = OptimizerKind::IVON;
  /// Learning rate; <= 0 picks the optimizer's default (IVON 0.1, Adam 1e-3, SGD 0.01).
  TORCH_ARG(double, lr) = 0;
  TORCH_ARG(int64_t, epochs) = 5;
  TORCH_ARG(int64_t, batch_size) = 128;
  TORCH_ARG(uint64_t, seed) = 0;
  /// IVON only: h0 and δ (METHODS.md §1); ess is set to each task's training-set size.
  TORCH_ARG(double, hess_init) = 1.0;
  TORCH_ARG(double, weight_decay) = 1e-4;

 public:
  double effective_lr() const;
  void validate() const;
};

struct Progress {
  int64_t task, num_tasks, epoch, epochs;
  double mean_loss;  // over the epoch's batches
};

struct Callbacks {
  std::function<void(const Progress&)> on_epoch_end;
  /// After task `task`: task-incremental accuracies on tasks 0..task.
  std::function<void(int64_t task, const std::vector<double>& accuracies)> on_task_end;
};

/// Accuracy of `model` on the test set of task `task`: task-incremental (argmax over the
/// task's head) and class-incremental (argmax over every class of tasks 0..seen).
struct Accuracy {
  double task_incremental;
  double class_incremental;
};
Accuracy evaluate(nn::MLP& model, const data::TaskSequence& seq, int64_t task, int64_t seen);

struct SequenceResult {
  metrics::AccuracyMatrix task_incremental;
  metrics::AccuracyMatrix class_incremental;
  std::vector<double> train_seconds;  // per task
};

/// Trains `model` on each task in turn (multi-head: loss on the task's head; single head:
/// on all outputs), evaluating all tasks seen so far after each.
SequenceResult train_finetune(nn::MLP& model, const data::TaskSequence& seq,
                              const FinetuneOptions& options, const Callbacks& callbacks = {});

}  // namespace kprior::train
