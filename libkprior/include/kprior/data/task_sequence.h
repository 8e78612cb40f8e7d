#pragma once
// Task sequences for continual learning: split (class groups per task) and permuted (a fixed
// pixel permutation per task). Targets are kept as *global* class ids, which are also the
// model's output columns; each task names the columns of its head. Two label views follow:
//   task-incremental  — logits restricted to the task's head, labels re-indexed 0..|head|-1;
//   class-incremental — all outputs of classes seen so far, global labels.
#include <torch/types.h>

#include <string>
#include <vector>

#include "kprior/data/batch_source.h"
#include "kprior/data/dataset.h"

namespace kprior::data {

struct Task {
  int64_t id = 0;                // position in the sequence, from 0
  std::string name;              // e.g. "0/1" for split MNIST, "perm-3" for permuted MNIST
  Dataset train;
  Dataset test;
  std::vector<int64_t> classes;  // the output columns of this task's head, in head order
  /// Optional: training batches streamed from files. When set, the learner trains from it,
  /// and `train` holds only an in-memory sample of the task's training examples, which the
  /// task boundary uses (memory selection, curvature, soft targets).
  StreamFactory train_stream{};
  int64_t streamed_examples = 0;  // the stream's examples per epoch
  /// The files `train`'s examples were decoded from, row by row (the JPEG trees' boundary
  /// sample); empty for data read from arrays.
  std::vector<std::string> train_files{};

  /// The number of examples the task trains on (the stream's when streamed).
  int64_t train_size() const { return train_stream ? streamed_examples : train.size(); }
  /// How many training examples each example of `train` stands for in a sum over the task's
  /// training set (curvature, Fisher): 1, or for a streamed task its examples per epoch over
  /// the in-memory sample's size, so that a sum over the sample, times this, estimates the
  /// sum over every training example.
  double train_sum_weight() const {
    return train_stream && train.size() > 0 ? static_cast<double>(streamed_examples) / static_cast<double>(train.size())
                                            : 1.0;
  }
};

struct TaskSequence {
  std::string name;
  std::vector<Task> tasks;
  int64_t num_outputs = 0;  // width of the model's output layer
  bool multi_head = true;   // true: each task has its own head (task-incremental training)
  /// Per output column, the class's name where the data names it (JPEG trees: the class
  /// folders, e.g. ImageNet's wnids); empty otherwise.
  std::vector<std::string> class_names{};

  int64_t size() const { return static_cast<int64_t>(tasks.size()); }
  /// The union of the heads of tasks 0..last, sorted (class-incremental evaluation).
  std::vector<int64_t> classes_seen(int64_t last) const;
};

/// A fingerprint of what a sequence holds: per task its classes, training and test sizes,
/// labels and, for data held as read (not a streamed JPEG tree, whose decoded floats may differ
/// in the last bits elsewhere), eight input values of every example; and the class names.
/// Equal for the same data; in practice different for other files, another subset, other
/// labels on the same images, another class order or another permutation.
uint64_t sequence_fingerprint(const TaskSequence& seq);

/// One task of a split sequence: the examples of `group` (global labels), named by its classes
/// ("2/3"). Throws UsageError for an empty group, a class outside [0, num_outputs), or no
/// training or test examples.
Task make_split_task(const std::string& name, int64_t id, const std::vector<int64_t>& group, Dataset train,
                     Dataset test, int64_t num_outputs);

/// Splits a labelled train/test pair by class groups, one task per group (for example
/// {{0,1},{2,3},{4,5},{6,7},{8,9}} for split MNIST). Groups must be non-empty, disjoint, and
/// within [0, num_outputs). Examples keep their original order.
TaskSequence make_split_sequence(const std::string& name, const Dataset& train,
                                 const Dataset& test,
                                 const std::vector<std::vector<int64_t>>& groups,
                                 int64_t num_outputs, bool multi_head = true);

/// The groups {0,1},{2,3},... of consecutive classes, `per_task` classes each.
std::vector<std::vector<int64_t>> consecutive_groups(int64_t num_classes, int64_t per_task);

/// Permuted tasks: task 0 is the data unchanged, task t>0 permutes the input features
/// (flattened) with random_permutation(features, mix_seed(seed, t)). One shared head of
/// num_outputs classes (domain-incremental).
TaskSequence make_permuted_sequence(const std::string& name, const Dataset& train,
                                    const Dataset& test, int64_t num_tasks, uint64_t seed,
                                    int64_t num_outputs = 10);

/// Bool mask [num_outputs], true at the task's head columns.
torch::Tensor output_mask(const Task& task, int64_t num_outputs);

/// The head's columns as an int64 tensor on `device`, made once per (columns, device) and
/// cached: every training step selects its heads' logits, and copying a fresh index from
/// host memory to a GPU would wait for all queued work first (a device sync per step).
torch::Tensor head_columns(const std::vector<int64_t>& columns, const torch::Device& device);

/// Task-incremental view: the logits of the task's head [N, |head|].
torch::Tensor head_logits(const Task& task, const torch::Tensor& logits);

/// Task-incremental view: global targets re-indexed to positions in the task's head.
/// Throws UsageError if a target is not in the head.
torch::Tensor head_targets(const Task& task, const torch::Tensor& global_targets);

}  // namespace kprior::data
