// Continual-learning methods against independent computations (METHODS.md §4, issue 5):
// the K-prior gradient identity for a GLM (w* by Newton's method in float64 with Eigen),
// FROMP's penalty gradient as J⁽ᶜ⁾ᵀ K⁻¹ b from oracle Jacobians, EWC by hand, calibration
// metrics by hand, and a short end-to-end run of every method.
#include <Eigen/Dense>
#include <fmt/core.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "blobs.h"
#include "catch.h"
#include "kprior/core/error.h"
#include "kprior/linearize/linearize.h"
#include "kprior/metrics/calibration.h"
#include "kprior/nn/cifarnet.h"
#include "kprior/nn/mlp.h"
#include "kprior/nn/resnet.h"
#include "kprior/regularize/ewc.h"
#include "kprior/regularize/factory.h"
#include "kprior/regularize/ivon_prior.h"
#include "kprior/train/continual_learner.h"

using namespace kprior;

namespace {

// Multinomial logistic regression: the minimiser of Σ_i CE(y_i, W x_i + b) + δ/2 (‖W‖² + ‖b‖²)
// by Newton's method, in plain Eigen (independent of LibTorch's autograd). Returns [W | b].
Eigen::MatrixXd newton_logreg(const Eigen::MatrixXd& x, const Eigen::VectorXi& y, int classes,
                              double delta) {
  const int n = static_cast<int>(x.rows()), d = static_cast<int>(x.cols()) + 1;
  Eigen::MatrixXd xt(n, d);
  xt << x, Eigen::VectorXd::Ones(n);
  Eigen::VectorXd w = Eigen::VectorXd::Zero(classes * d);  // row-major [C, d]
  for (int it = 0; it < 100; ++it) {
    Eigen::VectorXd g = delta * w;
    Eigen::MatrixXd h = delta * Eigen::MatrixXd::Identity(classes * d, classes * d);
    for (int i = 0; i < n; ++i) {
      Eigen::VectorXd f(classes);
      for (int c = 0; c < classes; ++c) f(c) = w.segment(c * d, d).dot(xt.row(i));
      Eigen::VectorXd p = (f.array() - f.maxCoeff()).exp();
      p /= p.sum();
      Eigen::VectorXd e = p;
      e(y(i)) -= 1.0;
      const Eigen::MatrixXd lam = Eigen::MatrixXd(p.asDiagonal()) - p * p.transpose();
      const Eigen::MatrixXd xx = xt.row(i).transpose() * xt.row(i);
      for (int a = 0; a < classes; ++a) {
        g.segment(a * d, d) += e(a) * xt.row(i).transpose();
        for (int b = 0; b < classes; ++b) h.block(a * d, b * d, d, d) += lam(a, b) * xx;
      }
    }
    const Eigen::VectorXd step = h.ldlt().solve(g);
    w -= step;
    if (step.norm() < 1e-15) break;
  }
  Eigen::MatrixXd out(classes, d);
  for (int c = 0; c < classes; ++c) out.row(c) = w.segment(c * d, d).transpose();
  return out;
}

std::vector<torch::Tensor> grads_of(const torch::Tensor& value, nn::TapedModule& model) {
  return torch::autograd::grad({value}, model.parameters());
}

double max_rel_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, (a[i] - b[i]).abs().max().item<double>());
    scale = std::max(scale, b[i].abs().max().item<double>());
  }
  return diff / scale;
}

}  // namespace

TEST_CASE("K-prior gradient equals the full-batch gradient of the past data for a GLM", "[regularize]") {
  torch::manual_seed(21);
  const int n = 60, dim = 3, classes = 3;
  const double delta = 0.7;
  const auto x = torch::randn({n, dim}, torch::kFloat64);
  const auto y = torch::randint(0, classes, {n});
  Eigen::MatrixXd ex(n, dim);
  Eigen::VectorXi ey(n);
  for (int i = 0; i < n; ++i) {
    ey(i) = static_cast<int>(y[i].item<int64_t>());
    for (int j = 0; j < dim; ++j) ex(i, j) = x[i][j].item<double>();
  }
  const Eigen::MatrixXd wstar = newton_logreg(ex, ey, classes, delta);

  auto model = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{dim, classes});  // a GLM
  model->to(torch::kFloat64);
  auto params = model->parameters();  // weight [C, D], bias [C]
  {
    torch::NoGradGuard no_grad;
    for (int c = 0; c < classes; ++c) {
      for (int j = 0; j < dim; ++j) params[0][c][j] = wstar(c, j);
      params[1][c] = wstar(c, dim);
    }
  }
  // Memory = all past data, soft labels at w*.
  const data::Task past{0, "past", {x, y}, {x, y}, {0, 1, 2}};
  memory::TaskMemory mem;
  mem.task = 0;
  mem.classes = {0, 1, 2};
  mem.inputs = x;
  mem.labels = y;
  mem.old_probs = linearize::head_probabilities(*model, x, mem.classes);
  std::vector<memory::TaskMemory> memories{mem};
  regularize::KPrior kp(regularize::KPriorOptions().delta(delta));
  const std::vector<torch::Tensor> none;
  kp.end_task({*model, past, memories, none, none});

  // At random weights: ∇K(w) vs ∇[Σ CE(y, f_w(x)) + δ/2 ‖w‖²].
  {
    torch::NoGradGuard no_grad;
    for (auto& p : params) p.copy_(torch::randn_like(p));
  }
  const auto g_kprior = grads_of(kp.penalty(*model, /*task_size=*/1), *model);
  const auto full = torch::nn::functional::cross_entropy(
                        model->forward(x), y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)) +
                    0.5 * delta * (params[0].square().sum() + params[1].square().sum());
  const auto g_full = grads_of(full, *model);
  CHECK(max_rel_diff(g_kprior, g_full) < 1e-10);
}

TEST_CASE("memory terms see the deterministic network: no dropout, BatchNorm statistics untouched",
          "[regularize]") {
  torch::manual_seed(24);
  const auto x = torch::rand({6, 3, 32, 32});
  const auto y = torch::tensor({0, 1, 0, 1, 1, 0});
  const data::Task task{0, "0/1", {x, y}, {x, y}, {0, 1}};
  const std::vector<torch::Tensor> none;
  auto memory_of = [&](nn::TapedModule& model) {
    memory::TaskMemory m;
    m.task = 0;
    m.classes = {0, 1};
    m.inputs = x;
    m.labels = y;
    m.old_probs = linearize::head_probabilities(model, x, m.classes);  // the boundary's, in eval mode
    return std::vector<memory::TaskMemory>{m};
  };

  SECTION("K-prior with CifarNet's dropout: the gradient at w* is zero while training") {
    nn::CifarNet model(4);
    const auto memories = memory_of(*model);
    regularize::KPrior kp(regularize::KPriorOptions().delta(0.5));
    kp.end_task({*model, task, memories, none, none});
    model->train();  // dropout on, as during the next task's steps
    // ∇K(w*) = Σ J(σ(f_w*) − σ(f_w*)) + δ(w* − w*) = 0 exactly for the deterministic f_w
    // (METHODS.md §4); with dropout's noise in f_w it would be of the order of the gradients.
    for (const auto& g : grads_of(kp.penalty(*model, 1), *model)) CHECK(g.abs().max().item<double>() < 1e-6);
    CHECK(model->is_training());
    // Replay's loss is the same number at every call, as dropout would not allow.
    regularize::Replay replay;
    replay.end_task({*model, task, memories, none, none});
    CHECK(replay.penalty(*model, 1).item<double>() == replay.penalty(*model, 1).item<double>());
  }
  SECTION("replay and ewc+fr+replay with ResNet-18: BatchNorm's running statistics do not move") {
    nn::ResNet18 model(nn::ResNetStem::Cifar, 4);
    model->eval();  // as the learner's task boundary
    const auto memories = memory_of(*model);
    std::vector<torch::Tensor> before;
    for (const auto& b : model->buffers()) before.push_back(b.clone());
    regularize::Replay replay;
    replay.end_task({*model, task, memories, none, none});
    regularize::Combined combined;
    combined.end_task({*model, task, memories, none, none});
    model->train();
    const auto values = replay.penalty(*model, 1) + combined.penalty(*model, 1);
    CHECK(std::isfinite(values.item<double>()));
    const auto after = model->buffers();
    REQUIRE(after.size() == before.size());
    for (size_t i = 0; i < after.size(); ++i) CHECK(torch::equal(after[i], before[i]));
    CHECK(model->is_training());
  }
}

TEST_CASE("FROMP: a singular memory kernel is a clear error, not a LibTorch one", "[regularize]") {
  torch::manual_seed(23);
  auto model = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{4, 6, 3}, nn::Activation::Tanh);
  model->to(torch::kFloat64);
  model->eval();
  const auto x = torch::randn({3, 4}, torch::kFloat64);
  const data::Task task{0, "t", {x, torch::tensor({0, 1, 2})}, {x, torch::tensor({0, 1, 2})}, {0, 1, 2}};
  std::vector<torch::Tensor> var;
  for (const auto& p : model->parameters()) var.push_back(torch::full_like(p, 0.1));
  auto m = memory::select_memory(*model, task, 3, memory::Selection::LambdaTrace, 0);
  m.inputs = torch::cat({m.inputs.slice(0, 0, 1), m.inputs.slice(0, 0, 1), m.inputs.slice(0, 2, 3)});  // a duplicate
  m.old_probs = linearize::head_probabilities(*model, m.inputs, m.classes);
  std::vector<memory::TaskMemory> memories{m};
  regularize::FROMP exact(regularize::FROMPOptions().jitter(1e-300));  // lost against K's entries
  CHECK_THROWS_WITH(exact.end_task({*model, task, memories, var, {}}),
                    Catch::Matchers::Contains("FROMP: the kernel of task 1's memory is singular with jitter 1e-300"));
  regularize::FROMP jittered(regularize::FROMPOptions().jitter(1e-2));
  CHECK_NOTHROW(jittered.end_task({*model, task, memories, var, {}}));
}

TEST_CASE("FROMP's penalty gradient is J(c)ᵀ K⁻¹ (m − m̄) with oracle Jacobians", "[regularize]") {
  torch::manual_seed(22);
  auto model = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{4, 6, 5}, nn::Activation::Tanh);
  model->to(torch::kFloat64);
  model->eval();
  const auto x = torch::randn({7, 4}, torch::kFloat64);
  const auto y = torch::randint(0, 2, {7}) + 1;  // classes 1, 2
  const data::Task task{0, "t", {x, y}, {x, y}, {1, 2}};
  std::vector<torch::Tensor> var;
  for (const auto& p : model->parameters()) var.push_back(torch::rand_like(p) * 0.1 + 0.01);
  std::vector<memory::TaskMemory> memories{memory::select_memory(*model, task, 5, memory::Selection::LambdaTrace, 0)};
  const double tau = 3.0;
  regularize::FROMP fromp(regularize::FROMPOptions().tau(tau).jitter(1e-4));
  fromp.end_task({*model, task, memories, var, {}});
  // Move the weights so that m − m̄ ≠ 0.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.add_(0.05 * torch::randn_like(p));
  }
  const int64_t n_task = 11;
  const auto g = grads_of(fromp.penalty(*model, n_task), *model);
  // Independent: J of the probabilities by the oracle, then τ Σ_c J_cᵀ K_c⁻¹ b_c (τ weighs the
  // term against the mean loss: the task size does not enter).
  const auto& m = memories[0];
  const auto params = model->parameters();
  const auto jp = linearize::jacobian_oracle(
      [&](const torch::Tensor& in) { return torch::softmax(model->forward(in).index_select(1, torch::tensor({1, 2})), 1); },
      params, m.inputs, {0, 1});
  const auto p_now = linearize::head_probabilities(*model, m.inputs, m.classes);
  const auto b = p_now - m.old_probs;  // [M, C]
  const auto kinv = fromp.kernel_inverses()[0];
  auto expected = torch::zeros({jp.size(2)}, torch::kFloat64);
  for (int64_t c = 0; c < 2; ++c) {
    expected += jp.select(1, c).t().matmul(kinv[c].matmul(b.select(1, c)));
  }
  expected *= tau;
  std::vector<torch::Tensor> flat;
  for (const auto& gi : g) flat.push_back(gi.reshape(-1));
  CHECK(max_rel_diff({torch::cat(flat)}, {expected}) < 1e-10);
  CHECK(fromp.penalty(*model, 1000).item<double>() == fromp.penalty(*model, n_task).item<double>());
  // The stored inverse is that of the kernel at the boundary plus the jitter: recompute the
  // kernel at the boundary weights is not possible here (they moved), so check symmetry and
  // positive definiteness, which an inverse of K + εI must have.
  for (int64_t c = 0; c < 2; ++c) {
    CHECK(torch::allclose(kinv[c], kinv[c].t()));
    CHECK(torch::linalg_eigvalsh(kinv[c], "L").min().item<double>() > 0);
  }
}

TEST_CASE("EWC penalty and its online/offline accumulation by hand", "[regularize]") {
  torch::manual_seed(23);
  auto model = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{2, 2});
  model->to(torch::kFloat64);
  const auto x = torch::randn({5, 2}, torch::kFloat64);
  const auto y = torch::tensor({0, 1, 1, 0, 1});
  const data::Task task{0, "t", {x, y}, {x, y}, {0, 1}};
  const std::vector<torch::Tensor> none;
  const std::vector<memory::TaskMemory> no_memory;
  for (bool online : {true, false}) {
    CAPTURE(online);
    regularize::EWC ewc(regularize::EWCOptions().lambda(2.0).online(online));
    ewc.end_task({*model, task, no_memory, none, none});
    const auto f1 = linearize::curvature_diagonal(*model, x, {}, {0, 1}, linearize::Curvature::GGN);
    const auto w1 = regularize::snapshot(*model);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.add_(0.3);
    }
    ewc.end_task({*model, task, no_memory, none, none});
    const auto f2 = linearize::curvature_diagonal(*model, x, {}, {0, 1}, linearize::Curvature::GGN);
    const auto w2 = regularize::snapshot(*model);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.sub_(0.1);
    }
    const auto params = model->parameters();
    double expected = 0;
    for (size_t i = 0; i < params.size(); ++i) {
      const auto w = params[i].detach();
      if (online) {
        expected += ((f1[i] + f2[i]) * (w - w2[i]).square()).sum().item<double>();
      } else {
        expected += (f1[i] * (w - w1[i]).square()).sum().item<double>() +
                    (f2[i] * (w - w2[i]).square()).sum().item<double>();
      }
    }
    expected *= 2.0 / (2.0 * 7);
    CHECK(ewc.penalty(*model, 7).item<double>() == Approx(expected).epsilon(1e-12));
  }
}

TEST_CASE("NLL, ECE and Brier on hand-made predictions", "[metrics]") {
  const auto p = torch::tensor({{0.9, 0.1}, {0.6, 0.4}, {0.3, 0.7}}, torch::kFloat64);
  const auto y = torch::tensor({0, 1, 1});
  CHECK(metrics::nll(p, y) == Approx(-(std::log(0.9) + std::log(0.4) + std::log(0.7)) / 3));
  // (0.1² + 0.1²) + (0.6² + 0.6²) + (0.3² + 0.3²), over 3
  CHECK(metrics::brier(p, y) == Approx(0.92 / 3));
  // Confidences 0.9 (right), 0.6 (wrong), 0.7 (right) land in three bins: (0.1 + 0.6 + 0.3)/3.
  CHECK(metrics::ece(p, y) == Approx(1.0 / 3));
  CHECK_THROWS_AS(metrics::nll(p, torch::tensor({0})), UsageError);
}

namespace {

data::Dataset blobs(int64_t per_class, uint64_t seed) { return testing::blobs(per_class, seed, 0.5); }

}  // namespace

TEST_CASE("every method learns a small split sequence end to end", "[train]") {
  const auto seq = data::make_split_sequence("blobs", blobs(60, 1), blobs(30, 2), {{0, 1}, {2, 3}}, 4);
  struct Run { std::string method; train::OptimizerKind opt; };
  const std::vector<Run> runs{{"finetune", train::OptimizerKind::SGD},
                              {"ewc", train::OptimizerKind::Adam},
                              {"fromp", train::OptimizerKind::Adam},
                              {"fromp", train::OptimizerKind::IVON},
                              {"replay", train::OptimizerKind::Adam},
                              {"kprior", train::OptimizerKind::Adam},
                              {"ewc+fr+replay", train::OptimizerKind::Adam},
                              {"ivon-prior", train::OptimizerKind::IVON},
                              {"ewc,fromp,replay", train::OptimizerKind::Adam}};
  for (const auto& r : runs) {
    CAPTURE(r.method, static_cast<int>(r.opt));
    torch::manual_seed(0);
    auto model = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{2, 16, 4});
    int epochs_seen = 0;
    train::Callbacks cb;
    cb.on_epoch_end = [&](const train::Progress&) { ++epochs_seen; };
    train::ContinualLearner learner(
        model, regularize::make_regularizers(r.method, {}),
        train::LearnerOptions().optimizer(r.opt).lr(r.opt == train::OptimizerKind::Adam ? 1e-2 : 0)
            .epochs(8).batch_size(32).memory_per_task(10), cb);
    const auto result = train::run_sequence(learner, seq);
    CHECK(epochs_seen == 16);
    CHECK(result.task_incremental.at(0, 0) > 0.9);
    CHECK(result.task_incremental.at(1, 1) > 0.9);
    CHECK(result.task_incremental.average(1) > 0.75);  // chance is 0.5
    CHECK(std::isfinite(result.nll));
    bool has_posterior = r.opt == train::OptimizerKind::IVON;
    for (const auto& reg : learner.regularizers()) has_posterior = has_posterior || reg->needs_variances();
    if (has_posterior) {
      const auto pred = learner.predict(seq.tasks[0].test.inputs, seq.tasks[0]);
      CHECK(pred.probs.sizes() == pred.variance.sizes());
      CHECK(pred.variance.min().item<double>() >= 0);
    } else {
      CHECK_THROWS_AS(learner.predict(seq.tasks[0].test.inputs, seq.tasks[0]), Error);
    }
    const bool uses_memory = r.method != "finetune" && r.method != "ewc" && r.method != "ivon-prior";
    CHECK(learner.memory().size() == (uses_memory ? 2u : 0u));
  }
  CHECK_THROWS_WITH(regularize::make_regularizers("nope", {}), Catch::Matchers::Contains("unknown method 'nope'"));
  CHECK_THROWS_AS(regularize::make_regularizers("ewc,ewc", {}), UsageError);
  CHECK_THROWS_AS(train::parse_optimizer("adamw"), UsageError);
  // NaN, infinite and negative settings are refused where they are built.
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  regularize::MethodSettings bad;
  bad.fromp.tau(inf);
  CHECK_THROWS_WITH(regularize::make_regularizers("fromp", bad), Catch::Matchers::Contains("FROMP tau must be a finite number > 0, got inf"));
  CHECK_NOTHROW(regularize::make_regularizers("ewc", bad));  // only the methods built are checked
  bad.ewc.lambda(nan);
  CHECK_THROWS_WITH(regularize::make_regularizers("ewc", bad), Catch::Matchers::Contains("EWC lambda must be a finite number >= 0, got nan"));
  bad.replay.weight(-1);
  CHECK_THROWS_AS(regularize::make_regularizers("replay", bad), UsageError);
  // The same checks when a regularizer is built directly.
  CHECK_THROWS_AS(regularize::FROMP(regularize::FROMPOptions().jitter(nan)), UsageError);
  CHECK_THROWS_AS(regularize::KPrior(regularize::KPriorOptions().delta(-1)), UsageError);
  CHECK_THROWS_AS(regularize::Combined(regularize::CombinedOptions().delta(inf)), UsageError);
  CHECK_THROWS_WITH(train::LearnerOptions().lr(nan).validate(), Catch::Matchers::Contains("learning rate"));
  CHECK_THROWS_AS(train::LearnerOptions().grad_clip(nan).validate(), UsageError);
  CHECK_THROWS_AS(train::LearnerOptions().laplace_prior(inf).validate(), UsageError);
  CHECK_THROWS_AS(train::LearnerOptions().hess_beta(1.5).validate(), UsageError);
  CHECK_NOTHROW(train::LearnerOptions().validate());
}

TEST_CASE("the cosine learning-rate schedule restarts at every task and follows its closed form", "[train]") {
  // scheduled_lr against ½(1 + cos(π s/S)) at a few points.
  CHECK(train::scheduled_lr(0.2, train::LrSchedule::Cosine, 0, 10) == Approx(0.2));
  CHECK(train::scheduled_lr(0.2, train::LrSchedule::Cosine, 5, 10) == Approx(0.1));
  CHECK(train::scheduled_lr(0.2, train::LrSchedule::Cosine, 9, 10) == Approx(0.1 * (1 + std::cos(0.9 * M_PI))));
  CHECK(train::scheduled_lr(0.2, train::LrSchedule::Constant, 9, 10) == 0.2);
  CHECK(train::parse_lr_schedule("cosine") == train::LrSchedule::Cosine);
  CHECK_THROWS_AS(train::parse_lr_schedule("step"), UsageError);
  // The learner, 3 epochs in batches of 32 per task: the rate of each epoch's last step, in
  // both tasks.
  const auto seq = data::make_split_sequence("blobs", blobs(60, 1), blobs(30, 2), {{0, 1}, {2, 3}}, 4);
  const int64_t per_epoch = (seq.tasks[0].train_size() + 31) / 32;
  REQUIRE(per_epoch == (seq.tasks[1].train_size() + 31) / 32);
  std::vector<torch::Tensor> finals;
  for (const auto schedule : {train::LrSchedule::Constant, train::LrSchedule::Cosine}) {
    torch::manual_seed(0);
    auto model = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{2, 8, 4});
    std::vector<double> lrs;
    train::Callbacks cb;
    cb.on_epoch_end = [&](const train::Progress& p) { lrs.push_back(p.lr); };
    train::ContinualLearner learner(model, regularize::make_regularizers("finetune", {}),
                                    train::LearnerOptions().optimizer(train::OptimizerKind::SGD).lr(0.05)
                                        .lr_schedule(schedule).epochs(3).batch_size(32), cb);
    for (const auto& task : seq.tasks) learner.observe(task);
    REQUIRE(lrs.size() == 6);
    for (size_t i = 0; i < lrs.size(); ++i) {
      const auto last_step = static_cast<double>(per_epoch * static_cast<int64_t>(i % 3 + 1) - 1);
      CHECK(lrs[i] == Approx(schedule == train::LrSchedule::Constant
                                 ? 0.05 : 0.025 * (1 + std::cos(M_PI * last_step / static_cast<double>(3 * per_epoch)))));
    }
    finals.push_back(torch::cat({model->parameters()[0].flatten(), model->parameters()[1].flatten()}));
  }
  CHECK_FALSE(torch::allclose(finals[0], finals[1]));  // the schedule reached the optimizer
}

TEST_CASE("the Laplace posterior at a boundary accumulates every task's GGN", "[train]") {
  // Σ_t = 1/(δ + Σ_{s≤t} GGN_s), each GGN at the weights that ended task s (METHODS.md §2;
  // the recursion FROMP's published runs use). The GGNs are recorded independently at each
  // task's end through the callback.
  const auto seq = data::make_split_sequence("blobs", blobs(40, 3), blobs(20, 4), {{0, 1}, {2, 3}}, 4);
  torch::manual_seed(1);
  auto model = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{2, 8, 4});
  model->to(torch::kFloat64);
  const double delta = 0.5;
  std::vector<torch::Tensor> expected;
  train::Callbacks cb;
  cb.on_task_end = [&](int64_t t) {
    const auto& task = seq.tasks[static_cast<size_t>(t)];
    const auto ggn = linearize::curvature_diagonal(*model, task.train.inputs.to(torch::kFloat64), {},
                                                   task.classes, linearize::Curvature::GGN);
    if (expected.empty()) expected = ggn;
    else for (size_t i = 0; i < ggn.size(); ++i) expected[i] = expected[i] + ggn[i];
  };
  train::ContinualLearner learner(model, regularize::make_regularizers("fromp", {}),
                                  train::LearnerOptions().optimizer(train::OptimizerKind::Adam)
                                      .lr(1e-2).epochs(3).memory_per_task(6).laplace_prior(delta), cb);
  for (const auto& task : seq.tasks) {
    learner.observe({task.id, task.name, {task.train.inputs.to(torch::kFloat64), task.train.targets},
                     {task.test.inputs.to(torch::kFloat64), task.test.targets}, task.classes});
  }
  const auto var = learner.posterior().variance();
  REQUIRE(var.size() == expected.size());
  std::vector<torch::Tensor> want;
  for (const auto& g : expected) want.push_back((g + delta).reciprocal());
  CHECK(max_rel_diff(var, want) < 1e-12);
  // Each task's GGN lives on its own head, so the first head keeps task 0's curvature after
  // task 1 instead of falling back to the prior variance 1/δ.
  const auto& head_bias = var.back();  // output bias: classes 0..3
  CHECK(head_bias[0].item<double>() < 1.0 / delta);
  CHECK(head_bias[2].item<double>() < 1.0 / delta);
}

TEST_CASE("a diverging run stops with a clear error instead of finishing with NaNs", "[train]") {
  const auto seq = data::make_split_sequence("blobs", blobs(40, 3), blobs(20, 4), {{0, 1}, {2, 3}}, 4);
  torch::manual_seed(0);
  auto model = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{2, 8, 4});
  train::ContinualLearner learner(model, regularize::make_regularizers("finetune", {}),
                                  train::LearnerOptions().optimizer(train::OptimizerKind::SGD).lr(1e30).epochs(3));
  CHECK_THROWS_WITH(learner.observe(seq.tasks[0]), Catch::Matchers::Contains("training diverged on task 1"));
}

TEST_CASE("a frozen parameter is refused up front, not after a task of training", "[train]") {
  const auto seq = data::make_split_sequence("blobs", blobs(40, 3), blobs(20, 4), {{0, 1}, {2, 3}}, 4);
  auto model = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{2, 8, 4});
  model->parameters()[0].set_requires_grad(false);
  CHECK_THROWS_WITH(train::ContinualLearner(model, regularize::make_regularizers("fromp", {}), train::LearnerOptions()),
                    Catch::Matchers::Contains("is frozen (requires_grad false)"));
  // Frozen after the learner was built: observe refuses before training.
  model->parameters()[0].set_requires_grad(true);
  train::ContinualLearner learner(model, regularize::make_regularizers("fromp", {}), train::LearnerOptions().epochs(1));
  model->parameters()[1].set_requires_grad(false);
  CHECK_THROWS_WITH(learner.observe(seq.tasks[0]), Catch::Matchers::Contains("is frozen"));
  CHECK(learner.tasks_observed() == 0);
}

TEST_CASE("progress callbacks: one per step, the boundary's between training and the task's end", "[train]") {
  const auto seq = data::make_split_sequence("blobs", blobs(40, 3), blobs(20, 4), {{0, 1}, {2, 3}}, 4);
  auto model = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{2, 8, 4});
  std::vector<std::string> events;
  train::Callbacks cb;
  cb.on_batch_end = [&](const train::BatchProgress& p) {
    events.push_back(fmt::format("b{}.{}.{}/{}", p.task, p.epoch, p.batch, p.batches));
  };
  cb.on_epoch_end = [&](const train::Progress& p) { events.push_back(fmt::format("e{}.{}", p.task, p.epoch)); };
  cb.on_boundary_start = [&](int64_t t) { events.push_back(fmt::format("boundary{}", t)); };
  cb.on_task_end = [&](int64_t t) { events.push_back(fmt::format("end{}", t)); };
  // 80 examples per task in batches of 32: 3 batches (32, 32, 16) per epoch.
  train::ContinualLearner learner(model, regularize::make_regularizers("fromp", {}),
                                  train::LearnerOptions().epochs(2).batch_size(32).memory_per_task(4), cb);
  learner.observe(seq.tasks[0]);
  const std::vector<std::string> expected{"b0.0.0/3", "b0.0.1/3", "b0.0.2/3", "e0.0",      "b0.1.0/3",
                                          "b0.1.1/3", "b0.1.2/3", "e0.1",     "boundary0", "end0"};
  CHECK(events == expected);
}

TEST_CASE("a streamed task's curvature is its boundary sample's, scaled to the whole task", "[regularize]") {
  // A streamed task whose 18 training examples are its 6-example boundary sample three times
  // over: the scaled sample sum must equal the brute-force sum over all 18.
  torch::manual_seed(8);
  auto model = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{2, 8, 4});
  const auto data = testing::blobs(3, 5, 0.8);
  data::Task task;
  task.name = "0/1";
  task.classes = {0, 1};
  task.train = {data.inputs.slice(0, 0, 6), data.targets.slice(0, 0, 6)};  // classes 0 and 1
  const auto all_x = torch::cat({task.train.inputs, task.train.inputs, task.train.inputs});
  const auto all_y = data::head_targets(task, torch::cat({task.train.targets, task.train.targets, task.train.targets}));
  CHECK(task.train_sum_weight() == 1.0);
  task.train_stream = [](int64_t, uint64_t) { return std::unique_ptr<data::BatchSource>(); };
  task.streamed_examples = 18;
  CHECK(task.train_sum_weight() == 3.0);
  for (auto kind : {linearize::Curvature::GGN, linearize::Curvature::EmpiricalFisher}) {
    const auto full = linearize::curvature_diagonal(*model, all_x, all_y, task.classes, kind);
    const auto scaled = regularize::task_curvature(*model, task, kind);
    REQUIRE(scaled.size() == full.size());
    for (size_t i = 0; i < full.size(); ++i) CHECK(torch::allclose(scaled[i], full[i], 1e-5, 1e-7));
  }
  // A memory cannot be larger than the sample it is chosen from.
  CHECK_NOTHROW(train::check_memory_fits(6, task));
  CHECK_THROWS_WITH(train::check_memory_fits(7, task),
                    Catch::Matchers::Contains("more than the 6 training examples of task 1 (classes 0/1) held in memory"));
}
