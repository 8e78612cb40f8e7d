#pragma once
// The continual learner (METHODS.md §3–4, §6): trains one task at a time with any optimizer
// (IVON, Adam, SGD) and any set of regularizers; at each task boundary selects a memory,
// forms the posterior and updates the regularizers. It is the API a lifelong-learning agent
// drives: observe(task) to learn a new task, predict(x, task) for probabilities with their
// predictive variance, memory() and posterior() to look inside. Progress goes to callbacks;
// nothing here prints.
#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kprior/checkpoint/tree.h"
#include "kprior/data/batch_loader.h"
#include "kprior/data/task_sequence.h"
#include "kprior/memory/memory_store.h"
#include "kprior/metrics/accuracy_matrix.h"
#include "kprior/nn/layer_tape.h"
#include "kprior/nn/memory_format.h"
#include "kprior/nn/precision.h"
#include "kprior/optim/ivon.h"
#include "kprior/posterior/diagonal_gaussian.h"
#include "kprior/regularize/regularizer.h"
#include "kprior/train/lr_schedule.h"

namespace kprior::train {

enum class OptimizerKind { IVON, Adam, SGD };
/// "ivon", "adam" or "sgd" (throws kprior::UsageError otherwise).
OptimizerKind parse_optimizer(const std::string& name);
/// "ivon", "adam" or "sgd": the inverse of parse_optimizer.
std::string to_string(OptimizerKind kind);
/// Each optimizer's default learning rate: IVON 0.1, Adam 1e-3, SGD 0.01.
double default_lr(OptimizerKind kind);
/// A fresh optimizer over `params` with learning rate ivon.lr(): IVON with all of `ivon`'s
/// options, Adam, or SGD with momentum 0.9 (the learner's and fit_map's one recipe).
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<torch::Tensor>& params,
                                                        OptimizerKind kind,
                                                        const optim::IVONOptions& ivon);

struct LearnerOptions {
  TORCH_ARG(OptimizerKind, optimizer) = OptimizerKind::IVON;
  /// Learning rate; 0 picks the optimizer's default (IVON 0.1, Adam 1e-3, SGD 0.01).
  TORCH_ARG(double, lr) = 0;
  TORCH_ARG(LrSchedule, lr_schedule) = LrSchedule::Constant;
  TORCH_ARG(int64_t, epochs) = 5;
  TORCH_ARG(int64_t, batch_size) = 128;
  /// Seeds every random choice of training: batch orders, IVON's noise, memory selection and,
  /// through LibTorch's global generators reseeded at each task's start, dropout masks.
  TORCH_ARG(uint64_t, seed) = 0;
  /// IVON: h0 and δ (METHODS.md §1); ess is each task's training-set size.
  TORCH_ARG(double, hess_init) = 1.0;
  TORCH_ARG(double, weight_decay) = 1e-4;
  /// IVON's β2, the momentum of its Hessian estimate (the paper's 0.99999 suits long runs).
  TORCH_ARG(double, hess_beta) = 0.99999;
  /// Global gradient-norm clip (FROMP's published runs clip); 0 disables.
  TORCH_ARG(double, grad_clip) = 0;
  /// Memory per task (examples) and how it is chosen.
  TORCH_ARG(int64_t, memory_per_task) = 40;
  TORCH_ARG(memory::Selection, selection) = memory::Selection::LambdaTrace;
  /// Prior precision δ of the diagonal GGN Laplace posterior used for kernels when the
  /// optimizer is not IVON: Σ = 1/(GGN summed over every task's training set so far + δ).
  TORCH_ARG(double, laplace_prior) = 1e-3;
  /// bf16 runs the training steps' forward passes under autocast (the model's parameters,
  /// gradients and the optimizer's state stay fp32; evaluation, all boundary work and FROMP's
  /// memory pass stay in the parameters' precision).
  TORCH_ARG(nn::Precision, precision) = nn::Precision::Float32;
  /// The layout of the model's convolution weights (and so of its activations); the learner
  /// converts the model once, before it builds the optimizer. Auto: channels-last for a model
  /// with convolutions on CUDA (nn/memory_format.h).
  TORCH_ARG(nn::MemoryFormat, memory_format) = nn::MemoryFormat::Contiguous;

 public:
  double effective_lr() const;
  void validate() const;
};

struct Progress {
  int64_t task, epoch, epochs;
  double mean_loss;  // over the epoch's batches, penalties included
  double lr;         // the learning rate of the epoch's last step
};

/// Where training is within an epoch (no training value: reading one would wait for the GPU).
struct BatchProgress {
  int64_t task, epoch, epochs, batch, batches;
};

struct Callbacks {
  std::function<void(const Progress&)> on_epoch_end;
  /// After every training step; for progress within long epochs.
  std::function<void(const BatchProgress&)> on_batch_end;
  /// When `task`'s training is done and its boundary work (memory selection, curvature,
  /// kernels, posterior) starts.
  std::function<void(int64_t task)> on_boundary_start;
  /// After `task` has been learned and its boundary work done.
  std::function<void(int64_t task)> on_task_end;
};

/// Probabilities over a task's head and their linearized variance diag(ΛJΣJᵀΛ).
struct Prediction {
  torch::Tensor probs;     // [N, C]
  torch::Tensor variance;  // [N, C]
};

/// Accuracy on one task's test set: task-incremental (argmax over its head) and
/// class-incremental (argmax over `classes`, every class seen so far).
struct Accuracy {
  double task_incremental;
  double class_incremental;
};

/// Per-task timings (seconds) and peak resident memory (MiB) after the task.
struct TaskCost {
  double train_seconds = 0;
  double boundary_seconds = 0;  // memory selection, posterior, regularizer updates
  double peak_mib = 0;
};

class ContinualLearner {
 public:
  ContinualLearner(std::shared_ptr<nn::TapedModule> model,
                   std::vector<std::unique_ptr<regularize::Regularizer>> regularizers,
                   LearnerOptions options, Callbacks callbacks = {});
  ~ContinualLearner();

  /// Learns `task` (its id must be the number of tasks observed so far), from its in-memory
  /// training set or, when it has one, its training stream.
  void observe(const data::Task& task);
  /// The joint-training upper bound: learns all tasks of `seq` at once, each example on its
  /// own task's head (no regularizers, no memory). Use on a fresh learner.
  void observe_all(const data::TaskSequence& seq);
  /// Probabilities on `task`'s head at the posterior mean, with predictive variances (needs a
  /// posterior: IVON's, or the Laplace one formed at a boundary when a method or MPE
  /// selection needs it; throws kprior::Error otherwise).
  Prediction predict(const torch::Tensor& x, const data::Task& task);
  Accuracy evaluate(const data::Task& task, const std::vector<int64_t>& classes);
  /// Predictive probabilities on `task`'s head: with IVON the Bayesian model average over
  /// `samples` posterior samples, otherwise the probabilities at the weights. Used for NLL,
  /// ECE and Brier.
  torch::Tensor predictive_probabilities(const torch::Tensor& x, const data::Task& task,
                                         int64_t samples = 16);
  /// Evaluation and predictive probabilities pass inputs through the model in chunks of this
  /// many examples (every bundled MNIST test set fits in one, so their results are unchanged).
  static constexpr int64_t kEvalChunk = 4096;

  const std::vector<memory::TaskMemory>& memory() const { return memories_; }
  /// The current posterior: IVON's, else the Laplace posterior of the last boundary.
  posterior::DiagonalGaussian posterior() const;
  nn::TapedModule& model() { return *model_; }
  int64_t tasks_observed() const { return tasks_; }
  const std::vector<TaskCost>& costs() const { return costs_; }

  /// Writes the learner's whole state at a task boundary into `tree` (model, optimizer,
  /// posterior, memories, regularizers, timings; paths in docs/checkpoint-format.md).
  void save_state(checkpoint::Tree& tree) const;
  /// Restores what save_state wrote into a learner built with the same model architecture,
  /// method and options; it then continues exactly as the saved one would have. Throws
  /// kprior::FileError naming the object that is missing or does not fit.
  void load_state(const checkpoint::Tree& tree);
  const std::vector<std::unique_ptr<regularize::Regularizer>>& regularizers() const { return regs_; }

 private:
  /// One optimizer step; returns the step's loss, detached, on the model's device.
  torch::Tensor train_step(const std::function<torch::Tensor()>& loss);
  /// Epochs over `source` with `loss_of(batch)`: each batch goes through `prepare` (if set)
  /// where it arrives, then to the model's device; returns the training seconds.
  double run_epochs(int64_t task_id, data::BatchSource& source,
                    const std::function<torch::Tensor(const data::Batch&)>& loss_of,
                    const std::function<void(data::Batch&)>& prepare = {});
  /// The model's outputs for `x`, in chunks of at most kEvalChunk examples on the model's
  /// device (a whole test set of large images does not fit through a network at once).
  torch::Tensor forward_chunked(const torch::Tensor& x);
  /// The loss of a batch: cross-entropy on the task's head (targets already head-local) plus
  /// every regularizer's penalty.
  torch::Tensor loss(const data::Task& task, const torch::Tensor& x, const torch::Tensor& local_targets);
  void set_ess(double n);
  void seed_module_randomness(int64_t task_id) const;
  /// Whether the weights, floating buffers (BatchNorm's statistics) and IVON's Hessian
  /// estimate are all finite (and h + δ > 0).
  bool state_is_finite() const;
  void end_task(const data::Task& task);
  /// Recursive diagonal GGN Laplace variances after `task` (optimizers other than IVON).
  std::vector<torch::Tensor> laplace_boundary_variances(const data::Task& task);

  std::shared_ptr<nn::TapedModule> model_;
  std::vector<std::unique_ptr<regularize::Regularizer>> regs_;
  bool needs_memory_ = false;  // some regularizer keeps a memory (and memory_per_task > 0)
  LearnerOptions options_;
  Callbacks callbacks_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<memory::TaskMemory> memories_;
  std::vector<torch::Tensor> laplace_variances_;
  std::vector<torch::Tensor> ggn_sum_;  // Σ_s GGN_s over the tasks observed so far
  std::vector<TaskCost> costs_;
  int64_t tasks_ = 0;
};

/// Throws UsageError when a memory of `per_task` examples cannot be chosen from `task`'s
/// in-memory training examples (for a streamed task, its boundary sample), naming the task.
/// The learner checks each task before training on it; an app can check them all up front.
void check_memory_fits(int64_t per_task, const data::Task& task);

/// Results of a whole sequence.
struct SequenceResult {
  metrics::AccuracyMatrix task_incremental;
  metrics::AccuracyMatrix class_incremental;
  std::vector<TaskCost> costs;
  /// After the last task, over the test sets of all tasks (task-incremental heads), from
  /// predictive_probabilities (IVON: Bayesian model average of 16 samples).
  double nll = 0, ece = 0, brier = 0;
};

/// Hooks of run_sequence: `on_row(t, accuracies)` after task t is evaluated (task-incremental
/// accuracies of tasks 0..t); `after_task(t, partial)` then, with the result so far (rows
/// 0..t filled) — the place to write a checkpoint.
struct SequenceHooks {
  std::function<void(int64_t, const std::vector<double>&)> on_row;
  std::function<void(int64_t, const SequenceResult&)> after_task;
  /// Stop after task t if stop(t) is true (the result then lacks NLL, ECE and Brier).
  std::function<bool(int64_t)> stop;
};

/// Observes every task of `seq` in order, evaluating all tasks seen so far after each. With
/// `resume` (the partial result saved with a learner that has observed k tasks), continues at
/// task k.
SequenceResult run_sequence(ContinualLearner& learner, const data::TaskSequence& seq,
                            const SequenceHooks& hooks = {}, const SequenceResult* resume = nullptr);

/// The partial result of a sequence under "metrics" of a checkpoint tree, and back.
void put_result(checkpoint::Tree& tree, const SequenceResult& r);
SequenceResult get_result(const checkpoint::Tree& tree, int64_t num_tasks);

/// Joint training on all tasks at once (the upper bound); fills the last row only.
SequenceResult run_joint(ContinualLearner& learner, const data::TaskSequence& seq);

}  // namespace kprior::train
