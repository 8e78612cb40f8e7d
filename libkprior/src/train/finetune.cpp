#include "kprior/train/finetune.h"

#include <torch/torch.h>

#include <chrono>

#include "kprior/core/error.h"
#include "kprior/core/random.h"
#include "kprior/data/batch_loader.h"
#include "kprior/optim/ivon.h"

namespace kprior::train {

OptimizerKind parse_optimizer(const std::string& name) {
  if (name == "ivon") return OptimizerKind::IVON;
  if (name == "adam") return OptimizerKind::Adam;
  if (name == "sgd") return OptimizerKind::SGD;
  throw UsageError("optimizer must be ivon, adam or sgd, got '" + name + "'");
}

double FinetuneOptions::effective_lr() const {
  if (lr_ > 0) return lr_;
  switch (optimizer_) {
    case OptimizerKind::IVON: return 0.1;
    case OptimizerKind::Adam: return 1e-3;
    case OptimizerKind::SGD: return 0.01;
  }
  return lr_;
}

void FinetuneOptions::validate() const {
  if (epochs_ <= 0) throw UsageError("epochs must be > 0, got " + std::to_string(epochs_));
  if (batch_size_ <= 0) throw UsageError("batch size must be > 0, got " + std::to_string(batch_size_));
}

namespace {

// The loss of one batch of `task` under the sequence's head layout.
torch::Tensor task_loss(nn::MLP& model, const data::TaskSequence& seq, const data::Task& task,
                        const data::Batch& batch) {
  auto logits = model->forward(batch.inputs);
  if (seq.multi_head) {
    return torch::nn::functional::cross_entropy(data::head_logits(task, logits),
                                                data::head_targets(task, batch.targets));
  }
  return torch::nn::functional::cross_entropy(logits, batch.targets);
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(nn::MLP& model, const FinetuneOptions& o,
                                                         int64_t train_size) {
  const double lr = o.effective_lr();
  switch (o.optimizer()) {
    case OptimizerKind::IVON:
      return std::make_unique<optim::IVON>(
          model->parameters(), optim::IVONOptions(lr, static_cast<double>(train_size))
                                   .hess_init(o.hess_init())
                                   .weight_decay(o.weight_decay())
                                   .seed(o.seed()));
    case OptimizerKind::Adam:
      return std::make_unique<torch::optim::Adam>(model->parameters(), torch::optim::AdamOptions(lr));
    case OptimizerKind::SGD:
      return std::make_unique<torch::optim::SGD>(model->parameters(),
                                                 torch::optim::SGDOptions(lr).momentum(0.9));
  }
  throw UsageError("unknown optimizer");
}

// One optimizer step on `batch`; IVON draws one weight sample for it.
double train_step(torch::optim::Optimizer& opt, nn::MLP& model, const data::TaskSequence& seq,
                  const data::Task& task, const data::Batch& batch) {
  if (auto* ivon = dynamic_cast<optim::IVON*>(&opt)) {
    double loss_value = 0;
    {
      auto sample = ivon->sampled_params(true);
      auto loss = task_loss(model, seq, task, batch);
      loss.backward();
      loss_value = loss.item<double>();
    }
    ivon->step();
    return loss_value;
  }
  opt.zero_grad();
  auto loss = task_loss(model, seq, task, batch);
  loss.backward();
  opt.step();
  return loss.item<double>();
}

}  // namespace

Accuracy evaluate(nn::MLP& model, const data::TaskSequence& seq, int64_t task, int64_t seen) {
  torch::NoGradGuard no_grad;
  const auto& t = seq.tasks.at(static_cast<size_t>(task));
  const auto logits = model->forward(t.test.inputs);
  const auto head_pred = data::head_logits(t, logits).argmax(1);
  const double task_acc =
      head_pred.eq(data::head_targets(t, t.test.targets)).to(torch::kFloat64).mean().item<double>();
  const auto classes = seq.classes_seen(seen);
  const auto cols = torch::tensor(classes, torch::kLong);
  const auto class_pred = cols.index_select(0, logits.index_select(1, cols).argmax(1));
  const double class_acc = class_pred.eq(t.test.targets).to(torch::kFloat64).mean().item<double>();
  return {task_acc, class_acc};
}

SequenceResult train_finetune(nn::MLP& model, const data::TaskSequence& seq,
                              const FinetuneOptions& options, const Callbacks& callbacks) {
  options.validate();
  SequenceResult result{metrics::AccuracyMatrix(seq.size()), metrics::AccuracyMatrix(seq.size()), {}};
  std::unique_ptr<torch::optim::Optimizer> opt;
  for (int64_t t = 0; t < seq.size(); ++t) {
    const auto& task = seq.tasks[static_cast<size_t>(t)];
    if (!opt) opt = make_optimizer(model, options, task.train.size());
    if (auto* ivon = dynamic_cast<optim::IVON*>(opt.get())) {
      // The posterior of this task's data: ess = its training-set size (METHODS.md §1).
      for (auto& group : ivon->param_groups()) {
        static_cast<optim::IVONOptions&>(group.options()).ess(static_cast<double>(task.train.size()));
      }
    }
    data::BatchLoader loader(task.train, options.batch_size(), true,
                             mix_seed(options.seed(), static_cast<uint64_t>(t)));
    const auto start = std::chrono::steady_clock::now();
    model->train();
    for (int64_t e = 0; e < options.epochs(); ++e) {
      loader.set_epoch(e);
      double sum = 0;
      for (const auto& batch : loader) sum += train_step(*opt, model, seq, task, batch);
      if (callbacks.on_epoch_end) {
        callbacks.on_epoch_end({t, seq.size(), e, options.epochs(),
                                sum / static_cast<double>(loader.num_batches())});
      }
    }
    result.train_seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    model->eval();
    std::vector<double> accs;
    for (int64_t j = 0; j <= t; ++j) {
      const auto acc = evaluate(model, seq, j, t);
      result.task_incremental.set(t, j, acc.task_incremental);
      result.class_incremental.set(t, j, acc.class_incremental);
      accs.push_back(acc.task_incremental);
    }
    if (callbacks.on_task_end) callbacks.on_task_end(t, accs);
  }
  return result;
}

}  // namespace kprior::train
