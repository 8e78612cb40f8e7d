#include "outputs.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>

#include "app_main.h"
#include "kprior/checkpoint/objects.h"
#include "kprior/core/error.h"
#include "kprior/memory/memory_store.h"

namespace kprior_run {

using nlohmann::json;

json result_json(const kprior::train::SequenceResult& r) {
  const int64_t last = r.task_incremental.num_tasks() - 1;
  json costs = json::array();
  for (const auto& c : r.costs) {
    costs.push_back({{"train_seconds", c.train_seconds}, {"boundary_seconds", c.boundary_seconds},
                     {"peak_mib", c.peak_mib}});
  }
  json task = {{"accuracy_matrix", r.task_incremental.rows()},
               {"average_accuracy", r.task_incremental.average(last)}};
  if (r.task_incremental.has(0, 0)) {  // joint training has the last row only
    task["backward_transfer"] = r.task_incremental.backward_transfer(last);
    task["forgetting"] = r.task_incremental.forgetting(last);
  }
  return {{"task_incremental", task},
          {"class_incremental", {{"accuracy_matrix", r.class_incremental.rows()},
                                 {"average_accuracy", r.class_incremental.average(last)}}},
          {"nll", r.nll}, {"ece", r.ece}, {"brier", r.brier}, {"per_task", costs}};
}

void write_csv(const std::string& path, const kprior::metrics::AccuracyMatrix& m) {
  std::ofstream csv(path);
  const int64_t t = m.num_tasks();
  // Tasks numbered from 1, as the console prints them and --stop-after-task counts them.
  csv << "after_task";
  for (int64_t j = 0; j < t; ++j) csv << ",task_" << j + 1;
  csv << "\n";
  for (int64_t i = 0; i < t; ++i) {
    if (!m.has(i, i)) continue;  // a partial run: the tasks learned so far
    csv << i + 1;
    for (int64_t j = 0; j < t; ++j) {
      csv << ",";
      if (j <= i) csv << fmt::format("{:.4f}", m.at(i, j));
    }
    csv << "\n";
  }
}

std::pair<double, double> mean_std(const std::vector<double>& v) {
  double mean = 0, var = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  for (double x : v) var += (x - mean) * (x - mean);
  return {mean, v.size() > 1 ? std::sqrt(var / static_cast<double>(v.size() - 1)) : 0.0};
}

json across_seeds(const json& runs, const std::string& at) {
  std::vector<double> v;
  const json::json_pointer pointer(at);
  for (const auto& r : runs) {
    if (r.contains(pointer) && r[pointer].is_number()) v.push_back(r[pointer].get<double>());
  }
  if (v.empty()) return json();
  const auto [mean, sd] = mean_std(v);
  return {{"mean", mean}, {"std", sd}};
}

// A fresh run into a folder an earlier run wrote: that run's files go first, so that none of
// them sits beside this run's as if it were this run's (a results.json of other settings, a
// checkpoint that --resume would pick). Other files in the folder stay.
void remove_earlier_run(const std::string& dir) {
  // Exactly the names kprior-run writes (per seed with --seeds > 1; a checkpoint's temporary
  // while it is replaced), not a user's file that merely starts like one.
  static const std::regex written(
      R"((results\.json|accuracy\.png|accuracy_matrix(-seed[0-9]+)?\.csv|example_scores(-seed[0-9]+)?\.h5|)"
      R"(checkpoint(-seed[0-9]+)?\.h5(\.tmp-[0-9]+)?))");
  const auto removed =
      kprior::app::remove_earlier_outputs(dir, [](const std::string& name) { return std::regex_match(name, written); });
  if (!removed.empty()) {
    fmt::print("note: {} held an earlier run; removed its {} (--resume continues a run instead)\n", dir, removed);
  }
}

// --example-scores: every training example of the task just learned, scored with the model
// and posterior of this boundary (the ones the memory selection used), and which were kept.
void write_example_scores(kprior::train::ContinualLearner& learner, const kprior::data::Task& task,
                          kprior::checkpoint::Tree& tree, const std::string& path) {
  using namespace kprior;
  std::vector<torch::Tensor> variances;
  std::string source = "none";
  try {
    const auto q = learner.posterior();
    variances = q.variance();
    source = q.source();
  } catch (const Error&) {
    // No posterior (e.g. fine-tuning with Adam): Tr Λ only, and the file says so.
  }
  const auto s = memory::score_examples(learner.model(), task, variances);
  const auto& mem = learner.memory();
  const bool remembered = !mem.empty() && mem.back().task == task.id;
  const std::string group = "task_" + std::to_string(task.id);
  checkpoint::put_example_scores(tree, group, s, remembered ? mem.back().indices : torch::Tensor(), task.train_files);
  tree.put_attr(group + "@posterior", source);
  tree.put_attr("@content", std::string("kprior-run example scores"));
  checkpoint::write(tree, path);
}

}  // namespace kprior_run
