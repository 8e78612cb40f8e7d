// ContinualLearner::save_state / load_state and the partial sequence result in a checkpoint
// tree (docs/checkpoint-format.md). Adam and SGD start every task with fresh moments, so at a
// task boundary only IVON has optimizer state to keep.
#include <torch/torch.h>

#include <sstream>

#include "kprior/checkpoint/objects.h"
#include "kprior/core/error.h"
#include "kprior/optim/ivon.h"
#include "kprior/train/continual_learner.h"

namespace kprior::train {
namespace {

torch::Tensor bytes_of(const std::string& s) {
  auto t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr(), s.data(), s.size());
  return t;
}

std::string string_of(const torch::Tensor& t) {
  const auto c = t.cpu().contiguous();
  return {static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel())};
}

std::string regularizer_group(size_t k, const regularize::Regularizer& r) {
  return "regularizers/" + std::to_string(k) + "_" + r.name();
}

// The method as a list of regularizer names ("fromp,kprior"; "" for fine-tuning).
std::string regularizer_names(const std::vector<std::unique_ptr<regularize::Regularizer>>& regs) {
  std::string out;
  for (const auto& r : regs) out += (out.empty() ? "" : ",") + r->name();
  return out;
}

// Copies `from` into `into` (a parameter or buffer), refusing a shape or type that differs.

}  // namespace

void ContinualLearner::save_state(checkpoint::Tree& tree) const {
  tree.put_attr("learner@tasks_observed", tasks_);
  tree.put_attr("learner@optimizer", to_string(options_.optimizer()));
  tree.put_attr("learner@regularizers", regularizer_names(regs_));
  checkpoint::put_module(tree, *model_);
  if (auto* ivon = dynamic_cast<optim::IVON*>(optimizer_.get())) {
    torch::serialize::OutputArchive archive;
    ivon->save(archive);
    std::ostringstream out;
    archive.save_to(out);
    tree.put("optimizer/archive", bytes_of(out.str()));  // exact state for resuming
    tree.put_list("optimizer/hess", ivon->hessian());    // readable copies
    tree.put_list("optimizer/momentum", ivon->momentum());
    tree.put_attr("optimizer@step_count", ivon->step_count());
    const auto& o = static_cast<const optim::IVONOptions&>(ivon->param_groups().front().options());
    tree.put_attr("optimizer@lr", o.lr());  // the options, readable (the archive has them all)
    tree.put_attr("optimizer@ess", o.ess());
    tree.put_attr("optimizer@hess_init", o.hess_init());
    tree.put_attr("optimizer@beta1", o.beta1());
    tree.put_attr("optimizer@beta2", o.beta2());
    tree.put_attr("optimizer@weight_decay", o.weight_decay());
  }
  if (dynamic_cast<optim::IVON*>(optimizer_.get()) != nullptr || !laplace_variances_.empty()) {
    checkpoint::put_posterior(tree, "posterior", posterior());
  }
  tree.put_list("learner/ggn_sum", ggn_sum_);
  tree.put_list("learner/laplace_variance", laplace_variances_);
  auto costs = torch::zeros({static_cast<int64_t>(costs_.size()), 3}, torch::kFloat64);
  for (size_t i = 0; i < costs_.size(); ++i) {
    costs[static_cast<int64_t>(i)][0] = costs_[i].train_seconds;
    costs[static_cast<int64_t>(i)][1] = costs_[i].boundary_seconds;
    costs[static_cast<int64_t>(i)][2] = costs_[i].peak_mib;
  }
  tree.put("learner/costs", costs);
  for (const auto& m : memories_) checkpoint::put_memory(tree, "memory/task_" + std::to_string(m.task), m);
  for (size_t k = 0; k < regs_.size(); ++k) regs_[k]->save_state(tree, regularizer_group(k, *regs_[k]));
}

void ContinualLearner::load_state(const checkpoint::Tree& saved) {
  // Checkpoints hold tensors on the CPU; memories, the Laplace sums and every regularizer's
  // state must live where the model does (a CUDA learner would otherwise mix devices).
  const auto params = model_->parameters();
  const auto device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
  const auto moved = device.is_cpu() ? checkpoint::Tree() : saved.to(device);
  const auto& tree = device.is_cpu() ? saved : moved;
  const auto& src = tree.source();
  if (tree.text("learner@optimizer") != to_string(options_.optimizer())) {
    throw FileError(src, "the checkpoint was trained with " + tree.text("learner@optimizer") +
                             ", this learner uses " + to_string(options_.optimizer()));
  }
  // Each regularizer reads its own state; one the checkpoint lacks would start empty and the
  // run would continue as fine-tuning. (Files written before the list was recorded: unchecked.)
  if (tree.has_attr("learner@regularizers") && tree.text("learner@regularizers") != regularizer_names(regs_)) {
    throw FileError(src, "the checkpoint's method is '" + tree.text("learner@regularizers") + "', this learner's '" +
                             regularizer_names(regs_) + "'");
  }
  const auto tasks = tree.integer("learner@tasks_observed");
  if (tasks < 0) throw FileError(src, "negative 'learner@tasks_observed'");
  checkpoint::get_module(tree, *model_);
  if (auto* ivon = dynamic_cast<optim::IVON*>(optimizer_.get())) {
    std::istringstream in(string_of(tree.tensor("optimizer/archive")));
    torch::serialize::InputArchive archive;
    try {
      archive.load_from(in);
      ivon->load(archive);
    } catch (const c10::Error& e) {
      throw FileError(src, std::string("'optimizer/archive' is not a valid IVON state: ") + e.what_without_backtrace());
    }
  }
  ggn_sum_ = tree.list("learner/ggn_sum");
  laplace_variances_ = tree.list("learner/laplace_variance");
  const auto costs = tree.tensor("learner/costs");
  if (costs.dim() != 2 || costs.size(0) != tasks || costs.size(1) != 3 || costs.scalar_type() != torch::kFloat64) {
    throw FileError(src, "'learner/costs' must be float64 [tasks_observed, 3]");
  }
  costs_.clear();
  for (int64_t i = 0; i < tasks; ++i) {
    costs_.push_back({costs[i][0].item<double>(), costs[i][1].item<double>(), costs[i][2].item<double>()});
  }
  memories_ = checkpoint::get_memories(tree);
  for (size_t k = 0; k < regs_.size(); ++k) regs_[k]->load_state(tree, regularizer_group(k, *regs_[k]), memories_);
  tasks_ = tasks;
}

void put_result(checkpoint::Tree& tree, const SequenceResult& r) {
  const auto matrix = [](const metrics::AccuracyMatrix& m) {
    const int64_t t = m.num_tasks();
    auto out = torch::full({t, t}, std::nan(""), torch::kFloat64);
    for (int64_t i = 0; i < t; ++i)
      for (int64_t j = 0; j <= i; ++j)
        if (m.has(i, j)) out[i][j] = m.at(i, j);
    return out;
  };
  tree.put("metrics/task_incremental", matrix(r.task_incremental));
  tree.put("metrics/class_incremental", matrix(r.class_incremental));
}

SequenceResult get_result(const checkpoint::Tree& tree, int64_t num_tasks) {
  SequenceResult r{metrics::AccuracyMatrix(num_tasks), metrics::AccuracyMatrix(num_tasks), {}};
  const auto fill = [&](const std::string& path, metrics::AccuracyMatrix& m) {
    const auto& t = tree.tensor(path);
    if (t.dim() != 2 || t.size(0) != num_tasks || t.size(1) != num_tasks || t.scalar_type() != torch::kFloat64) {
      throw FileError(tree.source(), "'" + path + "' must be float64 [" + std::to_string(num_tasks) + ", " +
                                         std::to_string(num_tasks) + "]");
    }
    for (int64_t i = 0; i < num_tasks; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        const double v = t[i][j].item<double>();
        if (std::isnan(v)) continue;
        if (!(v >= 0 && v <= 1)) throw FileError(tree.source(), "'" + path + "' holds an accuracy outside [0, 1]");
        m.set(i, j, v);
      }
  };
  fill("metrics/task_incremental", r.task_incremental);
  fill("metrics/class_incremental", r.class_incremental);
  return r;
}

}  // namespace kprior::train
