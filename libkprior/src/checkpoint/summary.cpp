#include "kprior/checkpoint/summary.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "kprior/core/error.h"

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

// A vector [N] at `path`, or a FileError naming the file.
torch::Tensor vector_of(const Tree& tree, const std::string& path, int64_t n) {
  const auto& t = tree.tensor(path);
  if (t.dim() != 1 || (n >= 0 && t.size(0) != n)) {
    throw FileError(tree.source(), "'" + path + "' has shape " + c10::str(t.sizes()) +
                                       (n >= 0 ? ", expected [" + std::to_string(n) + "]" : ", expected a vector"));
  }
  return t;
}

std::vector<ScoresSummary> scores_summary(const Tree& tree) {
  std::vector<ScoresSummary> out;
  for (const auto& group : tree.children("")) {
    if (group.rfind("task_", 0) != 0) continue;
    ScoresSummary s;
    try {
      s.task = std::stoll(group.substr(5));
    } catch (const std::exception&) {
      throw FileError(tree.source(), "'" + group + "' is not a task_<number> group");
    }
    s.examples = vector_of(tree, group + "/labels", -1).size(0);
    s.lambda_trace = stats_of({vector_of(tree, group + "/lambda_trace", s.examples)});
    if (tree.has(group + "/logit_variance")) {
      s.logit_variance = stats_of({vector_of(tree, group + "/logit_variance", s.examples)});
    }
    if (tree.has(group + "/mpe")) s.mpe = stats_of({vector_of(tree, group + "/mpe", s.examples)});
    if (tree.has(group + "/memory_indices")) s.remembered = vector_of(tree, group + "/memory_indices", -1).size(0);
    s.posterior = tree.has_attr(group + "@posterior") ? tree.text(group + "@posterior") : "none";
    out.push_back(s);
  }
  std::sort(out.begin(), out.end(), [](const ScoresSummary& a, const ScoresSummary& b) { return a.task < b.task; });
  return out;
}

SensitivitiesSummary sensitivities_summary(const Tree& tree) {
  SensitivitiesSummary s;
  s.form = tree.text("sensitivities@form");
  const auto nll = vector_of(tree, "sensitivities/nll", -1).to(torch::kFloat64);
  s.examples = nll.size(0);
  const auto loo = vector_of(tree, "sensitivities/loo_nll", s.examples).to(torch::kFloat64);
  vector_of(tree, "sensitivities/labels", s.examples);
  for (const char* name : {"logits", "variance", "deviation"}) {
    const auto& t = tree.tensor(std::string("sensitivities/") + name);
    if (t.dim() != 2 || t.size(0) != s.examples) {
      throw FileError(tree.source(), std::string("'sensitivities/") + name + "' has shape " + c10::str(t.sizes()) +
                                         ", expected [" + std::to_string(s.examples) + ", C]");
    }
  }
  const auto finite = torch::isfinite(loo);
  s.without_estimate = s.examples - finite.sum().item<int64_t>();
  s.nll = nll.mean().item<double>();
  s.loo_nll = s.without_estimate < s.examples ? loo.masked_select(finite).mean().item<double>() : std::nan("");
  if (tree.has("sensitivities/glm_invalid")) {
    s.glm_invalid = vector_of(tree, "sensitivities/glm_invalid", s.examples).ne(0).sum().item<int64_t>();
  }
  return s;
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
  if (s.content == "mpe-influence model" && !tree.has_attr("model@architecture")) {
    throw FileError(s.file, "an mpe-influence model file without 'model@architecture'");
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
  if (s.content == "kprior-run example scores") s.example_scores = scores_summary(tree);
  if (s.content == "mpe-influence sensitivities") {
    s.has_sensitivities = true;
    s.sensitivities = sensitivities_summary(tree);
  }
  return s;
}

}  // namespace kprior::checkpoint
