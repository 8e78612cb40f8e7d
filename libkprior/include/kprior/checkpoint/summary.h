#pragma once
// What a checkpoint holds, in numbers a person (kprior-inspect) or a program reads: the run,
// the model's size, posterior statistics, the memory per task and class, the metrics so far.
#include <array>
#include <string>
#include <vector>

#include "kprior/checkpoint/tree.h"

namespace kprior::checkpoint {

struct Stats {
  int64_t count = 0;
  double min = 0, median = 0, max = 0, mean = 0;
};

struct MemorySummary {
  int64_t task = 0;
  std::vector<int64_t> classes;
  std::vector<int64_t> per_class;  // remembered examples of each class, in `classes` order
  int64_t size = 0;
  Stats scores;
};

struct Summary {
  std::string file, producer, content;
  int64_t format_version = 0;
  std::string benchmark, config_json;  // run checkpoints only
  /// mpe-influence model files only: architecture, δ, training-set size and the JSON training
  /// settings (empty for files written before they were recorded).
  std::string architecture, training_settings_json;
  double prior_precision = 0;
  int64_t training_examples = 0;
  int64_t num_tasks = 0, tasks_completed = 0, seed = 0;
  int64_t parameters = 0, parameter_tensors = 0;
  bool has_posterior = false;
  std::string posterior_source;
  Stats posterior_variance, posterior_mean_abs;
  std::vector<MemorySummary> memories;
  /// Task-incremental accuracy R[i][j] (NaN where not measured) and per task
  /// {train seconds, boundary seconds, peak MiB}; run checkpoints only.
  std::vector<std::vector<double>> accuracy;
  std::vector<std::array<double, 3>> timings;
  double average_accuracy = 0;  // mean of the last completed row
};

Summary summarize(const Tree& tree);

}  // namespace kprior::checkpoint
