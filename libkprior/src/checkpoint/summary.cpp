#include "kprior/checkpoint/summary.h"

#include <torch/torch.h>

#include <cmath>

#include "kprior/checkpoint/objects.h"

namespace kprior::checkpoint {
namespace {

Stats stats_of(const std::vector<torch::Tensor>& ts) {
  std::vector<torch::Tensor> flat;
  for (const auto& t : ts) flat.push_back(t.reshape(-1).to(torch::kFloat64));
  if (flat.empty()) return {};
  const auto all = torch::cat(flat);
  if (all.numel() == 0) return {};
  return {all.numel(), all.min().item<double>(), all.median().item<double>(), all.max().item<double>(),
          all.mean().item<double>()};
}

}  // namespace

Summary summarize(const Tree& tree) {
  Summary s;
  s.file = tree.source();
  s.producer = tree.text("@producer");
  s.format_version = tree.integer("@format_version");
  s.content = tree.has_attr("@content") ? tree.text("@content") : "";
  if (s.content == "run") {
    s.benchmark = tree.text("run@benchmark");
    s.config_json = tree.text("config@json");
    s.num_tasks = tree.integer("run@num_tasks");
    s.seed = tree.integer("run@seed");
    s.tasks_completed = tree.integer("learner@tasks_observed");
  }
  if (tree.has_attr("model@architecture")) {  // an mpe-influence model file
    s.architecture = tree.text("model@architecture");
    if (tree.has_attr("model@prior_precision")) s.prior_precision = tree.real("model@prior_precision");
    if (tree.has_attr("training@examples")) {
      s.training_examples = tree.integer("training@examples");
      s.training_settings_json = tree.text("training@settings");
    }
  }
  for (const auto& name : tree.children("model")) {
    s.parameters += tree.tensor("model/" + name).numel();
    ++s.parameter_tensors;
  }
  if (tree.has_attr("posterior@source")) {
    const auto q = get_posterior(tree, "posterior");
    s.has_posterior = true;
    s.posterior_source = q.source();
    s.posterior_variance = stats_of(q.variance());
    std::vector<torch::Tensor> abs_mean;
    for (const auto& m : q.mean()) abs_mean.push_back(m.abs());
    s.posterior_mean_abs = stats_of(abs_mean);
  }
  for (const auto& m : get_memories(tree)) {
    MemorySummary ms{m.task, m.classes, {}, m.size(), stats_of({m.scores})};
    for (const auto c : m.classes) ms.per_class.push_back(m.labels.eq(c).sum().item<int64_t>());
    s.memories.push_back(ms);
  }
  if (s.content == "run" && tree.has("metrics/task_incremental")) {
    const auto r = tree.tensor("metrics/task_incremental").to(torch::kFloat64);
    for (int64_t i = 0; i < r.size(0); ++i) {
      std::vector<double> row;
      for (int64_t j = 0; j < r.size(1); ++j) row.push_back(r[i][j].item<double>());
      s.accuracy.push_back(row);
    }
    if (s.tasks_completed > 0 && s.tasks_completed <= r.size(0)) {
      const auto last = r[s.tasks_completed - 1].slice(0, 0, s.tasks_completed);
      s.average_accuracy = last.mean().item<double>();
    }
    if (tree.has("learner/costs")) {
      const auto t = tree.tensor("learner/costs").to(torch::kFloat64);
      for (int64_t i = 0; i < t.size(0) && t.dim() == 2 && t.size(1) == 3; ++i) {
        s.timings.push_back({t[i][0].item<double>(), t[i][1].item<double>(), t[i][2].item<double>()});
      }
    }
  }
  return s;
}

}  // namespace kprior::checkpoint
