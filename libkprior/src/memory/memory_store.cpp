#include "kprior/memory/memory_store.h"

#include <torch/torch.h>

#include "kprior/core/error.h"
#include "kprior/linearize/linearize.h"
#include "kprior/memory/scores.h"

namespace kprior::memory {

Selection parse_selection(const std::string& name) {
  if (name == "lambda") return Selection::LambdaTrace;
  if (name == "mpe") return Selection::MPE;
  if (name == "random") return Selection::Random;
  throw UsageError("memory selection must be lambda, mpe or random, got '" + name + "'");
}

std::string to_string(Selection s) {
  switch (s) {
    case Selection::LambdaTrace: return "lambda";
    case Selection::MPE: return "mpe";
    case Selection::Random: return "random";
  }
  return "?";
}

TaskMemory select_memory(nn::TapedModule& model, const data::Task& task, int64_t per_task,
                         Selection how, uint64_t seed, const std::vector<torch::Tensor>& variances) {
  if (per_task <= 0) throw UsageError("memory size per task must be > 0");
  const auto& x = task.train.inputs;
  const auto local = data::head_targets(task, task.train.targets);
  torch::Tensor scores;
  if (how == Selection::Random) {
    scores = random_scores(x.size(0), seed).to(x.device());
  } else {
    if (how == Selection::MPE && variances.empty()) throw UsageError("MPE selection needs the posterior variances");
    // The same scores --example-scores writes (Tr Λ needs no variances: skip their cost).
    const auto s = score_examples(model, task, how == Selection::MPE ? variances : std::vector<torch::Tensor>{});
    scores = (how == Selection::LambdaTrace ? s.lambda_trace : s.mpe).to(x.device());
  }
  // An equal share per class, as balanced as the class counts allow (class_quotas).
  const auto c = static_cast<int64_t>(task.classes.size());
  std::vector<torch::Tensor> members_of(c);
  std::vector<int64_t> counts(c);
  for (int64_t k = 0; k < c; ++k) {
    members_of[k] = local.eq(k).nonzero().view(-1);
    counts[k] = members_of[k].size(0);
  }
  const auto quotas = class_quotas(counts, per_task);
  std::vector<int64_t> chosen;
  for (int64_t k = 0; k < c; ++k) {
    const auto& members = members_of[k];
    const auto picked = select_top_per_class(scores.index_select(0, members),
                                             torch::zeros({members.size(0)}, torch::kLong), quotas[k]);
    for (int64_t i : picked) chosen.push_back(members[i].item<int64_t>());
  }
  const auto idx = torch::tensor(chosen, torch::kLong);
  TaskMemory m;
  m.task = task.id;
  m.classes = task.classes;
  m.inputs = x.index_select(0, idx.to(x.device()));
  m.labels = task.train.targets.index_select(0, idx.to(x.device()));
  m.scores = scores.index_select(0, idx.to(scores.device()));
  m.old_probs = linearize::head_probabilities(model, m.inputs, m.classes);
  m.indices = idx;
  return m;
}

ExampleScores score_examples(nn::TapedModule& model, const data::Task& task,
                             const std::vector<torch::Tensor>& variances) {
  const auto& x = task.train.inputs;
  const auto p = linearize::head_probabilities(model, x, task.classes);
  ExampleScores s;
  s.labels = task.train.targets.cpu();
  s.lambda_trace = lambda_trace_scores(p).cpu();
  if (!variances.empty()) {
    const auto v = linearize::logit_variance(model, x, task.classes, variances);
    s.logit_variance = v.sum(1).cpu();
    s.mpe = mpe_scores(p, data::head_targets(task, task.train.targets), v).cpu();
  }
  return s;
}

torch::Tensor local_labels(const TaskMemory& m) {
  return data::head_targets(data::Task{m.task, "", {}, {}, m.classes}, m.labels);
}

void refresh_soft_targets(nn::TapedModule& model, std::vector<TaskMemory>& memories) {
  for (auto& m : memories) m.old_probs = linearize::head_probabilities(model, m.inputs, m.classes);
}

}  // namespace kprior::memory
