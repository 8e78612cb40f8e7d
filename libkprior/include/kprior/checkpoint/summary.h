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

/// One task of a kprior-run example-scores file.
struct ScoresSummary {
  int64_t task = 0;              ///< numbered from 0, as the file's task_<s> groups
  int64_t examples = 0;          ///< scored training examples
  int64_t remembered = 0;        ///< of them in the task's memory (0: no memory)
  std::string posterior;         ///< the posterior the scores used: laplace, ivon or none
  Stats lambda_trace, logit_variance, mpe;  ///< count 0 where the file has no such score
};

/// An mpe-influence sensitivities file.
struct SensitivitiesSummary {
  std::string form;
  int64_t examples = 0;
  double nll = 0;                ///< mean over all examples
  double loo_nll = 0;            ///< mean over the examples with a finite value
  int64_t without_estimate = 0;  ///< examples whose loo_nll is not finite
  int64_t glm_invalid = -1;      ///< GLM form: examples flagged glm_invalid; -1 where not recorded
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
  std::vector<ScoresSummary> example_scores;  // example-scores files only
  bool has_sensitivities = false;             // mpe-influence sensitivities files only
  SensitivitiesSummary sensitivities;
};

/// Throws kprior::FileError naming the file when a part it summarises is malformed (missing
/// objects, lengths that disagree).
Summary summarize(const Tree& tree);

}  // namespace kprior::checkpoint
