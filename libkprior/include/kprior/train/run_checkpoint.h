#pragma once
// A run's checkpoint: the learner's state, the accuracy matrices so far and the run's
// configuration in one file, written atomically after every task (docs/checkpoint-format.md).
#include <string>

#include "kprior/train/continual_learner.h"

namespace kprior::train {

struct RunInfo {
  std::string config_json;  // the full configuration, as the app reports it in results.json
  std::string arguments;    // the command-line options that reproduce the run (JSON array)
  std::string benchmark;    // e.g. "split-mnist"
  int64_t num_tasks = 0;
  uint64_t seed = 0;
};

/// Writes learner + partial result + info to `path` (atomic replace).
void save_run_checkpoint(const std::string& path, const ContinualLearner& learner,
                         const SequenceResult& partial, const RunInfo& info);

/// Reads the run information only (to rebuild the learner before loading it).
RunInfo read_run_info(const checkpoint::Tree& tree);

/// Restores `learner` from `tree` and returns the partial result to resume run_sequence with.
SequenceResult load_run_checkpoint(const checkpoint::Tree& tree, ContinualLearner& learner);

}  // namespace kprior::train
