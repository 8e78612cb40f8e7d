#include "kprior/train/continual_learner.h"

#include <sys/resource.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "kprior/core/error.h"
#include "kprior/core/random.h"
#include "kprior/data/batch_loader.h"
#include "kprior/linearize/linearize.h"
#include "kprior/metrics/calibration.h"
#include "kprior/optim/grad_clip.h"
#include "kprior/optim/ivon.h"
#include "kprior/posterior/sources.h"
#include "kprior/regularize/ewc.h"

namespace kprior::train {

OptimizerKind parse_optimizer(const std::string& name) {
  if (name == "ivon") return OptimizerKind::IVON;
  if (name == "adam") return OptimizerKind::Adam;
  if (name == "sgd") return OptimizerKind::SGD;
  throw UsageError("optimizer must be ivon, adam or sgd, got '" + name + "'");
}

std::string to_string(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::IVON: return "ivon";
    case OptimizerKind::Adam: return "adam";
    case OptimizerKind::SGD: return "sgd";
  }
  return "?";
}

double default_lr(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::IVON: return 0.1;
    case OptimizerKind::Adam: return 1e-3;
    case OptimizerKind::SGD: return 0.01;
  }
  throw UsageError("unknown optimizer");
}

double LearnerOptions::effective_lr() const { return lr_ > 0 ? lr_ : default_lr(optimizer_); }

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<torch::Tensor>& params,
                                                        OptimizerKind kind,
                                                        const optim::IVONOptions& ivon) {
  switch (kind) {
    case OptimizerKind::IVON: return std::make_unique<optim::IVON>(params, ivon);
    case OptimizerKind::Adam:
      return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(ivon.lr()));
    case OptimizerKind::SGD:
      return std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(ivon.lr()).momentum(0.9));
  }
  throw UsageError("unknown optimizer");
}

void LearnerOptions::validate() const {
  if (epochs_ <= 0) throw UsageError("epochs must be > 0, got " + std::to_string(epochs_));
  if (batch_size_ <= 0) throw UsageError("batch size must be > 0, got " + std::to_string(batch_size_));
  if (memory_per_task_ < 0) throw UsageError("memory per task must be >= 0");
  require_non_negative("learning rate (0 = the optimizer's default)", lr_);
  require_non_negative("gradient clip", grad_clip_);
  require_positive("laplace prior precision", laplace_prior_);
  // IVON's settings by IVON's own checks, now rather than when the first task starts.
  optim::IVONOptions(effective_lr(), 1.0).hess_init(hess_init_).weight_decay(weight_decay_).beta2(hess_beta_).validate();
}

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double peak_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

// The learner's optimizer: IVON's ess is set per task (set_ess), so 1 here.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(nn::TapedModule& model, const LearnerOptions& o) {
  return train::make_optimizer(model.parameters(), o.optimizer(),
                        optim::IVONOptions(o.effective_lr(), 1.0)
                            .hess_init(o.hess_init())
                            .weight_decay(o.weight_decay())
                            .beta2(o.hess_beta())
                            .seed(o.seed()));
}

// The learner's posterior, kernels, curvature and checkpoints all cover model.parameters();
// IVON's posterior covers the trainable ones only, so a frozen parameter would misalign them
// (found after a whole task of training). Refused up front instead.
void require_all_trainable(const torch::nn::Module& model) {
  for (const auto& p : model.named_parameters()) {
    if (!p.value().requires_grad()) {
      throw UsageError("ContinualLearner: parameter '" + p.key() + "' is frozen (requires_grad false); the learner "
                       "keeps a posterior over every parameter of its model. Unfreeze it, or keep a frozen "
                       "feature extractor outside the model and feed its outputs as the inputs");
    }
  }
}

}  // namespace

ContinualLearner::ContinualLearner(std::shared_ptr<nn::TapedModule> model,
                                   std::vector<std::unique_ptr<regularize::Regularizer>> regularizers,
                                   LearnerOptions options, Callbacks callbacks)
    : model_(std::move(model)), regs_(std::move(regularizers)), options_(options),
      callbacks_(std::move(callbacks)) {
  options_.validate();
  require_all_trainable(*model_);
  needs_memory_ = regularize::needs_memory(regs_, options_.memory_per_task());
  const bool cuda = !model_->parameters().empty() && model_->parameters().front().is_cuda();
  if (nn::resolve_memory_format(options_.memory_format(), *model_, cuda) == nn::MemoryFormat::ChannelsLast) {
    nn::to_channels_last(*model_);  // before the optimizer: its state takes the weights' layout
  }
  optimizer_ = make_optimizer(*model_, options_);
}

ContinualLearner::~ContinualLearner() = default;

torch::Tensor ContinualLearner::loss(const data::Task& task, const torch::Tensor& x,
                                     const torch::Tensor& local_targets) {
  auto total = torch::nn::functional::cross_entropy(data::head_logits(task, model_->forward(x)), local_targets);
  for (auto& r : regs_) {
    auto p = r->penalty(*model_, task.train_size());
    if (p.defined()) total = total + p;
  }
  return total;
}

torch::Tensor ContinualLearner::train_step(const std::function<torch::Tensor()>& step_loss) {
  // The step's forward passes in the options' precision (bf16 autocast or fp32); backward,
  // clipping and the update outside it.
  const auto loss_fn = [&] {
    nn::ForwardPrecisionGuard precision(*model_, options_.precision());
    return step_loss();
  };
  auto clip = [&] {
    if (options_.grad_clip() > 0) optim::clip_grad_norm(model_->parameters(), options_.grad_clip());
  };
  // Nothing here reads a value back to the host: on a GPU the next step's work queues up
  // behind this one's instead of waiting for it.
  if (auto* ivon = dynamic_cast<optim::IVON*>(optimizer_.get())) {
    torch::Tensor value;
    {
      auto sample = ivon->sampled_params(true);  // loss and penalties at θ ~ q
      auto l = loss_fn();
      l.backward();
      clip();  // before the guard records the gradient
      value = l.detach();
    }
    ivon->step();
    return value;
  }
  optimizer_->zero_grad();
  auto l = loss_fn();
  l.backward();
  clip();
  optimizer_->step();
  return l.detach();
}

void ContinualLearner::set_ess(double n) {
  if (auto* ivon = dynamic_cast<optim::IVON*>(optimizer_.get())) {
    // The posterior of the data being learned: ess = its size (METHODS.md §1).
    for (auto& group : ivon->param_groups()) static_cast<optim::IVONOptions&>(group.options()).ess(n);
  }
}

bool ContinualLearner::state_is_finite() const {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> ok;
  for (const auto& p : model_->parameters()) ok.push_back(p.isfinite().all());
  for (const auto& b : model_->buffers()) {  // BatchNorm's running statistics
    if (b.is_floating_point()) ok.push_back(b.isfinite().all());
  }
  if (auto* ivon = dynamic_cast<optim::IVON*>(optimizer_.get())) {
    // The posterior's variance 1 / (ess (h + δ)) needs h + δ finite and positive.
    const auto h = ivon->hessian();
    const auto& o = static_cast<const optim::IVONOptions&>(ivon->param_groups().front().options());
    for (const auto& t : h) ok.push_back((t + o.weight_decay()).gt(0).all() & t.isfinite().all());
  }
  return ok.empty() || torch::stack(ok).all().item<bool>();  // one read-back
}

double ContinualLearner::run_epochs(int64_t task_id, data::BatchSource& source,
                                    const std::function<torch::Tensor(const data::Batch&)>& loss_of,
                                    const std::function<void(data::Batch&)>& prepare) {
  const auto start = Clock::now();
  const auto device = model_->parameters().front().device();
  if (device.is_cuda()) source.pin_batches();  // streamed batches then copy asynchronously
  model_->train();
  const double base_lr = options_.effective_lr();
  // The optimizer keeps its nominal rate outside training (a saved state, a diverged run).
  struct RestoreLr {
    torch::optim::Optimizer& optimizer;
    double lr;
    ~RestoreLr() { set_lr(optimizer, lr); }
  } restore{*optimizer_, base_lr};
  const int64_t steps = options_.epochs() * source.num_batches();
  double lr = base_lr;
  for (int64_t e = 0; e < options_.epochs(); ++e) {
    source.set_epoch(e);
    auto sum = torch::zeros({}, torch::TensorOptions(torch::kFloat64).device(device));
    for (int64_t b = 0; b < source.num_batches(); ++b) {
      if (options_.lr_schedule() != LrSchedule::Constant) {
        lr = scheduled_lr(base_lr, options_.lr_schedule(), e * source.num_batches() + b, steps);
        set_lr(*optimizer_, lr);
      }
      auto batch = source.batch(b);
      if (prepare) prepare(batch);
      if (batch.inputs.device() != device) {  // streamed batches arrive on the CPU
        // From page-locked memory all three copies are asynchronous; a copy from pageable
        // memory would wait for the device's queue (the targets and indices are small).
        const bool async = device.is_cuda() && batch.inputs.is_pinned();
        const auto move = [&](const torch::Tensor& t) { return async ? t.pin_memory().to(device, true) : t.to(device); };
        batch = {move(batch.inputs), move(batch.targets), move(batch.indices)};
      }
      sum.add_(train_step([&] { return loss_of(batch); }).to(torch::kFloat64));
      if (callbacks_.on_batch_end) callbacks_.on_batch_end({task_id, e, options_.epochs(), b, source.num_batches()});
    }
    // The epoch's one read-back of a training value.
    const double mean_loss = sum.item<double>() / static_cast<double>(source.num_batches());
    if (callbacks_.on_epoch_end) callbacks_.on_epoch_end({task_id, e, options_.epochs(), mean_loss, lr});
    // Stop at once: a diverged model would only fail later with a less helpful message (a
    // huge but finite loss can already have left IVON's Hessian estimate negative or NaN).
    const char* diverged = !std::isfinite(mean_loss) ? "the loss is not finite"
                           : !state_is_finite()      ? "the weights or the optimizer's state are no longer finite"
                                                     : nullptr;
    if (diverged != nullptr) {
      throw Error("training diverged on task " + std::to_string(task_id + 1) + ", epoch " + std::to_string(e + 1) +
                  " (" + diverged + "); try a smaller learning rate or regularizer weight");
    }
  }
  model_->eval();
  return since(start);
}

void check_memory_fits(int64_t per_task, const data::Task& task) {
  if (per_task <= task.train.size()) return;
  throw UsageError("a memory of " + std::to_string(per_task) + " examples per task is more than the " +
                   std::to_string(task.train.size()) + " training examples of task " + std::to_string(task.id + 1) +
                   " (classes " + task.name + ")" +
                   (task.train_stream ? " held in memory for its boundary (a streamed task keeps a sample of each class: kprior-run "
                                         "--boundary-sample)"
                                      : "") +
                   "; use a smaller memory per task (kprior-run --memory-per-task)");
}

void ContinualLearner::seed_module_randomness(int64_t task_id) const {
  // Dropout draws its masks from LibTorch's global generators (CPU and CUDA). Seeding them
  // at the start of every task makes a run resumed at a task boundary draw the same masks as
  // the uninterrupted run, without saving generator states in the checkpoint.
  torch::manual_seed(mix_seed(options_.seed(), 8000 + static_cast<uint64_t>(task_id)));
}

void ContinualLearner::observe(const data::Task& task) {
  if (task.id != tasks_) {
    throw UsageError("observe: expected task " + std::to_string(tasks_) + ", got task " +
                     std::to_string(task.id));
  }
  if (needs_memory_) check_memory_fits(options_.memory_per_task(), task);  // before hours of training
  require_all_trainable(*model_);  // frozen since construction?
  if (dynamic_cast<optim::IVON*>(optimizer_.get()) == nullptr) {
    // Adam and SGD start each task with fresh moments (the published FROMP protocol); IVON
    // keeps its state: its Hessian estimate is the posterior carried into the next task.
    optimizer_ = make_optimizer(*model_, options_);
  }
  set_ess(static_cast<double>(task.train_size()));
  seed_module_randomness(task.id);
  TaskCost cost;
  const uint64_t order_seed = mix_seed(options_.seed(), static_cast<uint64_t>(task.id));
  std::unique_ptr<data::BatchSource> source;
  if (task.train_stream) {
    source = task.train_stream(options_.batch_size(), order_seed);
  } else {
    source = std::make_unique<data::DatasetSource>(data::BatchLoader(task.train, options_.batch_size(), true, order_seed));
  }
  // Head-local targets without a device sync per step: an in-memory task's are mapped (and
  // checked) once; a streamed batch's on the CPU, before it moves to the device.
  const auto local_targets = task.train_stream ? torch::Tensor() : data::head_targets(task, task.train.targets);
  const auto to_local = [&](data::Batch& b) {
    b.targets = local_targets.defined() ? local_targets.index_select(0, b.indices) : data::head_targets(task, b.targets);
  };
  cost.train_seconds = run_epochs(
      task.id, *source, [&](const data::Batch& b) { return loss(task, b.inputs, b.targets); }, to_local);
  if (callbacks_.on_boundary_start) callbacks_.on_boundary_start(task.id);
  const auto boundary = Clock::now();
  // The boundary (memory selection, curvature, kernels) runs on the task's in-memory data: on
  // the model's device, where a caller kept it on the CPU (the batches above moved one by one).
  const auto device = model_->parameters().front().device();
  if (task.train.inputs.defined() && task.train.inputs.device() != device) {
    data::Task here = task;
    here.train = task.train.to(device);
    end_task(here);
  } else {
    end_task(task);
  }
  cost.boundary_seconds = since(boundary);
  cost.peak_mib = peak_mib();
  costs_.push_back(cost);
  ++tasks_;
  if (callbacks_.on_task_end) callbacks_.on_task_end(task.id);
}

void ContinualLearner::observe_all(const data::TaskSequence& seq) {
  if (tasks_ != 0) throw UsageError("observe_all: the learner has already observed tasks");
  require_all_trainable(*model_);
  for (const auto& t : seq.tasks) {
    if (t.train_stream) throw UsageError("joint training needs every task's data in memory; task " + std::to_string(t.id + 1) + " is streamed");
  }
  // All tasks' data, each example with the mask of its task's head.
  std::vector<torch::Tensor> xs, ys, masks;
  for (const auto& t : seq.tasks) {
    xs.push_back(t.train.inputs);
    ys.push_back(t.train.targets);
    masks.push_back(data::output_mask(t, seq.num_outputs).to(t.train.targets.device())
                        .unsqueeze(0).expand({t.train.size(), seq.num_outputs}));
  }
  const data::Dataset all{torch::cat(xs), torch::cat(ys)};
  const auto mask = torch::cat(masks);
  set_ess(static_cast<double>(all.size()));
  seed_module_randomness(0);
  TaskCost cost;
  data::DatasetSource source(data::BatchLoader(all, options_.batch_size(), true, mix_seed(options_.seed(), 0)));
  cost.train_seconds = run_epochs(0, source, [&](const data::Batch& b) {
    const auto logits = model_->forward(b.inputs).masked_fill(
        mask.index_select(0, b.indices).logical_not(), -std::numeric_limits<double>::infinity());
    return torch::nn::functional::cross_entropy(logits, b.targets);
  });
  cost.peak_mib = peak_mib();
  costs_.push_back(cost);
  tasks_ = seq.size();
}

std::vector<torch::Tensor> ContinualLearner::laplace_boundary_variances(const data::Task& task) {
  // Recursive diagonal GGN Laplace (METHODS.md §2): precision_t = δ + Σ_{s≤t} GGN_s, each
  // GGN summed over its task's training set on its own head — the posterior of all tasks so
  // far, as FROMP's published runs use. (The GGN of the last task alone leaves every earlier
  // head at the prior variance 1/δ, which swamps those heads' kernels.)
  auto ggn = regularize::task_curvature(*model_, task, linearize::Curvature::GGN);
  for (size_t i = 0; i < ggn_sum_.size(); ++i) ggn[i] = ggn[i] + ggn_sum_[i];
  ggn_sum_ = ggn;
  laplace_variances_ = posterior::laplace(model_->parameters(), ggn, options_.laplace_prior()).variance();
  return laplace_variances_;
}

void ContinualLearner::end_task(const data::Task& task) {
  bool want_variances = options_.selection() == memory::Selection::MPE;
  for (const auto& r : regs_) want_variances = want_variances || r->needs_variances();
  std::vector<torch::Tensor> variances, precision;
  if (auto* ivon = dynamic_cast<optim::IVON*>(optimizer_.get())) {
    // One read of IVON's posterior serves both the variances and the precision.
    variances = ivon->posterior().variance();
    for (const auto& v : variances) precision.push_back(v.reciprocal());
  } else if (want_variances) {
    variances = laplace_boundary_variances(task);
  }
  if (needs_memory_) {
    memories_.push_back(memory::select_memory(*model_, task, options_.memory_per_task(),
                                              options_.selection(),
                                              mix_seed(options_.seed(), 7000 + static_cast<uint64_t>(task.id)),
                                              variances));
    memory::refresh_soft_targets(*model_, memories_);
  }
  for (auto& r : regs_) r->end_task({*model_, task, memories_, variances, precision});
}

posterior::DiagonalGaussian ContinualLearner::posterior() const {
  if (auto* ivon = dynamic_cast<optim::IVON*>(optimizer_.get())) return ivon->posterior();
  if (laplace_variances_.empty()) {
    throw Error("posterior: no posterior yet (the optimizer is not IVON and no task boundary "
                "has computed a Laplace posterior)");
  }
  std::vector<torch::Tensor> mean;
  for (const auto& p : model_->parameters()) mean.push_back(p.detach().clone());
  return {mean, laplace_variances_, "laplace"};
}

Prediction ContinualLearner::predict(const torch::Tensor& x_in, const data::Task& task) {
  const auto x = x_in.to(model_->parameters().front().device());
  model_->eval();
  const auto probs = linearize::head_probabilities(*model_, x, task.classes);
  const auto variances = posterior().variance();  // throws before the first Laplace boundary
  return {probs, linearize::probability_variance(*model_, x, task.classes, variances)};
}

torch::Tensor ContinualLearner::forward_chunked(const torch::Tensor& x) {
  const auto device = model_->parameters().front().device();
  if (x.size(0) <= kEvalChunk) return model_->forward(x.to(device));
  std::vector<torch::Tensor> parts;
  for (int64_t s = 0; s < x.size(0); s += kEvalChunk) parts.push_back(model_->forward(x.slice(0, s, s + kEvalChunk).to(device)));
  return torch::cat(parts);
}

torch::Tensor ContinualLearner::predictive_probabilities(const torch::Tensor& x, const data::Task& task,
                                                       int64_t samples) {
  model_->eval();
  if (x.size(0) > kEvalChunk) {
    // Each chunk draws the same posterior samples (the generator is seeded per task).
    std::vector<torch::Tensor> parts;
    for (int64_t s = 0; s < x.size(0); s += kEvalChunk) {
      parts.push_back(predictive_probabilities(x.slice(0, s, s + kEvalChunk), task, samples));
    }
    return torch::cat(parts);
  }
  const auto device = model_->parameters().front().device();
  if (x.device() != device) return predictive_probabilities(x.to(device), task, samples);
  if (dynamic_cast<optim::IVON*>(optimizer_.get()) == nullptr) {
    return linearize::head_probabilities(*model_, x, task.classes);
  }
  // Bayesian model average over IVON's posterior (METHODS.md §1), on the task's head; a
  // generator seeded per task so evaluations are reproducible.
  auto gen = posterior::seeded_generator(x.device(), mix_seed(options_.seed(), 9000 + static_cast<uint64_t>(task.id)));
  const auto cols = torch::tensor(task.classes, torch::kLong).to(x.device());
  const auto forward = [&](const torch::Tensor& in) { return model_->forward(in).index_select(1, cols); };
  return posterior::bma_probabilities(forward, model_->parameters(), posterior(), x, samples, gen);
}

Accuracy ContinualLearner::evaluate(const data::Task& task, const std::vector<int64_t>& classes) {
  torch::NoGradGuard no_grad;
  model_->eval();
  const auto logits = forward_chunked(task.test.inputs);
  const auto targets = task.test.targets.to(logits.device());
  const auto head_pred = data::head_logits(task, logits).argmax(1);
  const double task_acc = head_pred.eq(data::head_targets(task, targets))
                              .to(torch::kFloat64).mean().item<double>();
  const auto cols = torch::tensor(classes, torch::kLong).to(logits.device());
  const auto class_pred = cols.index_select(0, logits.index_select(1, cols).argmax(1));
  const double class_acc = class_pred.eq(targets).to(torch::kFloat64).mean().item<double>();
  return {task_acc, class_acc};
}

namespace {

// NLL, ECE and Brier over every task's test set, each on its own head.
void add_calibration(ContinualLearner& learner, const data::TaskSequence& seq, SequenceResult& r) {
  std::vector<torch::Tensor> probs, targets;
  for (const auto& task : seq.tasks) {
    probs.push_back(learner.predictive_probabilities(task.test.inputs, task));
    targets.push_back(data::head_targets(task, task.test.targets).to(probs.back().device()));
  }
  // Heads may differ in width; pad with zero probabilities to the widest (they change none of
  // the three scores).
  int64_t width = 0;
  for (const auto& p : probs) width = std::max(width, p.size(1));
  for (auto& p : probs) p = torch::constant_pad_nd(p, {0, width - p.size(1)});
  const auto p = torch::cat(probs), y = torch::cat(targets);
  r.nll = metrics::nll(p, y);
  r.ece = metrics::ece(p, y);
  r.brier = metrics::brier(p, y);
}

}  // namespace

SequenceResult run_sequence(ContinualLearner& learner, const data::TaskSequence& seq,
                            const SequenceHooks& hooks, const SequenceResult* resume) {
  SequenceResult r = resume != nullptr
                         ? *resume
                         : SequenceResult{metrics::AccuracyMatrix(seq.size()), metrics::AccuracyMatrix(seq.size()), {}};
  if (r.task_incremental.num_tasks() != seq.size()) {
    throw UsageError("run_sequence: the partial result is for " + std::to_string(r.task_incremental.num_tasks()) +
                     " tasks, the sequence has " + std::to_string(seq.size()));
  }
  for (int64_t t = learner.tasks_observed(); t < seq.size(); ++t) {
    learner.observe(seq.tasks[static_cast<size_t>(t)]);
    const auto classes = seq.classes_seen(t);
    std::vector<double> row;
    for (int64_t j = 0; j <= t; ++j) {
      const auto acc = learner.evaluate(seq.tasks[static_cast<size_t>(j)], classes);
      r.task_incremental.set(t, j, acc.task_incremental);
      r.class_incremental.set(t, j, acc.class_incremental);
      row.push_back(acc.task_incremental);
    }
    if (hooks.on_row) hooks.on_row(t, row);
    r.costs = learner.costs();
    if (hooks.after_task) hooks.after_task(t, r);
    if (hooks.stop && hooks.stop(t) && t + 1 < seq.size()) return r;
  }
  add_calibration(learner, seq, r);
  r.costs = learner.costs();
  return r;
}

SequenceResult run_joint(ContinualLearner& learner, const data::TaskSequence& seq) {
  SequenceResult r{metrics::AccuracyMatrix(seq.size()), metrics::AccuracyMatrix(seq.size()), {}};
  learner.observe_all(seq);
  const int64_t last = seq.size() - 1;
  const auto classes = seq.classes_seen(last);
  for (int64_t j = 0; j <= last; ++j) {
    const auto acc = learner.evaluate(seq.tasks[static_cast<size_t>(j)], classes);
    r.task_incremental.set(last, j, acc.task_incremental);
    r.class_incremental.set(last, j, acc.class_incremental);
  }
  add_calibration(learner, seq, r);
  r.costs = learner.costs();
  return r;
}

}  // namespace kprior::train
