#pragma once
// What kprior-run writes: results.json's entries, the accuracy matrices' CSV, example scores,
// and the clearing of an earlier run's files.
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kprior/checkpoint/file.h"
#include "kprior/data/task_sequence.h"
#include "kprior/metrics/accuracy_matrix.h"
#include "kprior/train/continual_learner.h"

namespace kprior_run {

/// One seed's entry of results.json: both accuracy matrices, their summaries, NLL, ECE,
/// Brier and the per-task costs.
nlohmann::json result_json(const kprior::train::SequenceResult& r);

/// accuracy_matrix.csv: row after_task i, column task_j, tasks numbered from 1; the rows of
/// the tasks learned so far.
void write_csv(const std::string& path, const kprior::metrics::AccuracyMatrix& m);

/// Mean and sample standard deviation (0 for one value).
std::pair<double, double> mean_std(const std::vector<double>& v);

/// Mean and standard deviation over the seeds of the number at JSON pointer `at` in each
/// run's entry (null where no run has it, e.g. joint training's backward transfer).
nlohmann::json across_seeds(const nlohmann::json& runs, const std::string& at);

/// A fresh run into a folder an earlier run wrote: removes that run's files (and says so).
void remove_earlier_run(const std::string& dir);

/// --example-scores: every training example of the task just learned, scored with the model
/// and posterior of this boundary, and which were kept; added to `tree`, written to `path`.
void write_example_scores(kprior::train::ContinualLearner& learner, const kprior::data::Task& task,
                          kprior::checkpoint::Tree& tree, const std::string& path);

}  // namespace kprior_run
