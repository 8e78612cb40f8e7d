// The fast layer-wise linearization against the slow oracle (one backward pass per example
// and column), in float64, on random MLPs and CNNs (ResNet-18 with BatchNorm in eval mode
// included), several heads and batch sizes (METHODS.md §2–3, issues 4 and 8).
#include <torch/torch.h>

#include <cmath>
#include <numeric>
#include <random>

#include "catch.h"
#include "kprior/core/error.h"
#include "kprior/linearize/linearize.h"
#include "kprior/linearize/predictive.h"
#include "kprior/memory/memory_store.h"
#include "kprior/memory/scores.h"
#include "kprior/nn/cifarnet.h"
#include "kprior/nn/lenet5.h"
#include "kprior/nn/mlp.h"
#include "kprior/nn/resnet.h"
#include "kprior/posterior/sources.h"
#include "linearize/pooled_conv.h"  // internal: the fused and the device paths of pooled convolutions

using namespace kprior;

namespace {

// max |a − b| / max |b|: the relative error the issue bounds by 1e-10.
double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  const double scale = b.abs().max().item<double>();
  return (a - b).abs().max().item<double>() / (scale > 0 ? scale : 1.0);
}

std::vector<torch::Tensor> random_variances(nn::TapedModule& model) {
  std::vector<torch::Tensor> v;
  for (const auto& p : model.parameters()) v.push_back(torch::rand_like(p) + 0.1);
  return v;
}

torch::Tensor flat(const std::vector<torch::Tensor>& parts) {
  std::vector<torch::Tensor> f;
  for (const auto& p : parts) f.push_back(p.reshape(-1));
  return torch::cat(f);
}

torch::Tensor oracle_jacobian(nn::TapedModule& model, const torch::Tensor& x,
                              const std::vector<int64_t>& cols) {
  return linearize::jacobian_oracle([&](const torch::Tensor& in) { return model.forward(in); },
                                    model.parameters(), x, cols);
}

torch::Tensor softmax_hessian(const torch::Tensor& p) {
  return torch::diag_embed(p) - p.unsqueeze(2) * p.unsqueeze(1);
}

// A convolution pooled 3x3 (28 → 9: the last row and column of the map are dropped) with
// tanh, then a Linear head: pooling other than LeNet's 2x2 and ReLU's.
struct Pool3NetImpl : nn::TapedModule {
  Pool3NetImpl() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 3, 3).padding(1).stride(1)));
    fc = register_module("fc", torch::nn::Linear(3 * 9 * 9, 5));
  }
  torch::Tensor forward_taped(const torch::Tensor& x, nn::LayerTape* tape) override {
    return nn::tape_linear(fc, nn::tape_conv2d_pool(conv, x, nn::Activation::Tanh, 3, tape).flatten(1), tape);
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::Linear fc{nullptr};
};

struct Case {
  std::string name;
  std::shared_ptr<nn::TapedModule> model;
  torch::Tensor x1, x2;
  std::vector<int64_t> columns;
};

std::vector<Case> cases() {
  torch::manual_seed(5);
  std::vector<Case> out;
  auto mlp = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{6, 5, 4, 7}, nn::Activation::Tanh);
  auto relu = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{6, 8, 7});
  auto lenet = std::make_shared<nn::LeNet5Impl>(9);
  auto cifar = std::make_shared<nn::CifarNetImpl>(6);
  auto lenet_tanh = std::make_shared<nn::LeNet5Impl>(4, 1, nn::Activation::Tanh);
  auto lenet_avg = std::make_shared<nn::LeNet5Impl>(5, 1, nn::Activation::Tanh, nn::Pooling::Average);
  auto pool3 = std::make_shared<Pool3NetImpl>();
  for (auto m : std::vector<std::shared_ptr<nn::TapedModule>>{mlp, relu, lenet, cifar, lenet_tanh, lenet_avg, pool3}) {
    m->to(torch::kFloat64);
    m->eval();
  }
  const auto opts = torch::TensorOptions(torch::kFloat64);
  out.push_back({"mlp-tanh N=5 all", mlp, torch::randn({5, 6}, opts), torch::randn({3, 6}, opts), {0, 1, 2, 3, 4, 5, 6}});
  out.push_back({"mlp-tanh N=1 one class", mlp, torch::randn({1, 6}, opts), torch::randn({1, 6}, opts), {4}});
  out.push_back({"mlp-relu N=4 head", relu, torch::randn({4, 6}, opts), torch::randn({2, 6}, opts), {5, 1}});
  out.push_back({"lenet5 N=3 head", lenet, torch::randn({3, 1, 28, 28}, opts), torch::randn({2, 1, 28, 28}, opts), {1, 4, 7}});
  out.push_back({"lenet5 N=1 one class", lenet, torch::randn({1, 1, 28, 28}, opts), torch::randn({1, 1, 28, 28}, opts), {8}});
  // Mostly blank images: flat regions give ties inside pooling windows (the first position
  // wins, in the fast path as in autograd) and ReLUs off at the winners.
  const auto sparse = [&](int64_t n) {
    return torch::randn({n, 1, 28, 28}, opts) * (torch::rand({n, 1, 28, 28}, opts) < 0.05);
  };
  out.push_back({"lenet5 ties N=4 head", lenet, sparse(4), sparse(3), {0, 2, 3, 6}});
  out.push_back({"lenet5-tanh N=3 all", lenet_tanh, torch::randn({3, 1, 28, 28}, opts), torch::randn({2, 1, 28, 28}, opts), {0, 1, 2, 3}});
  out.push_back({"lenet5-tanh-avgpool N=3 head", lenet_avg, torch::randn({3, 1, 28, 28}, opts),
                 torch::randn({2, 1, 28, 28}, opts), {0, 2, 4}});
  out.push_back({"pool3 N=2 head", pool3, torch::randn({2, 2, 28, 28}, opts), torch::randn({3, 2, 28, 28}, opts), {4, 1}});
  out.push_back({"cifarnet N=2 head", cifar, torch::randn({2, 3, 32, 32}, opts), torch::randn({1, 3, 32, 32}, opts), {0, 5}});
  // ResNet-18 with the CIFAR stem on 1x8x8 inputs: 20 BatchNorm layers, linearized in eval
  // mode, with running statistics made non-trivial by a few train-mode batches.
  auto resnet = std::make_shared<nn::ResNet18Impl>(nn::ResNetStem::Cifar, 3, /*in_channels=*/1);
  resnet->to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : resnet->named_parameters()) {  // BatchNorm scales and shifts off (1, 0)
      if (p.key().find("bn") != std::string::npos || p.key().find("downsample.1") != std::string::npos) {
        p.value().copy_(torch::rand_like(p.value()) + (p.key().find("weight") != std::string::npos ? 0.5 : -0.5));
      }
    }
    for (int i = 0; i < 3; ++i) resnet->forward(torch::randn({4, 1, 8, 8}, opts) * 2 + 0.5);  // train mode
    resnet->eval();
  }
  out.push_back({"resnet18 N=2 head", resnet, torch::randn({2, 1, 8, 8}, opts), torch::randn({1, 1, 8, 8}, opts), {2, 0}});
  return out;
}

}  // namespace

TEST_CASE("fast Jacobians, variances and kernels equal the oracle", "[linearize]") {
  for (const auto& c : cases()) {
    CAPTURE(c.name);
    auto& m = *c.model;
    const auto var = random_variances(m);
    const auto sigma = flat(var);
    const auto j1 = oracle_jacobian(m, c.x1, c.columns);
    const auto j2 = oracle_jacobian(m, c.x2, c.columns);

    CHECK(rel_err(linearize::jacobian(m, c.x1, c.columns), j1) < 1e-10);

    // diag(J Σ Jᵀ), J Σ Jᵀ per example, J1 Σ J2ᵀ
    const auto cov = torch::einsum("nap,p,nbp->nab", {j1, sigma, j1});
    CHECK(rel_err(linearize::logit_variance(m, c.x1, c.columns, var), cov.diagonal(0, 1, 2)) < 1e-10);
    CHECK(rel_err(linearize::logit_covariance(m, c.x1, c.columns, var), cov) < 1e-10);
    const auto k12 = torch::einsum("nap,p,mbp->namb", {j1, sigma, j2});
    CHECK(rel_err(linearize::kernel(m, c.x1, c.x2, c.columns, var), k12) < 1e-10);
    const auto k11 = torch::einsum("nap,p,mbp->namb", {j1, sigma, j1});
    const auto blocks = linearize::class_kernels(m, c.x1, c.columns, var);
    for (int64_t k = 0; k < blocks.size(0); ++k) {
      CHECK(rel_err(blocks[k], k11.select(3, k).select(1, k)) < 1e-10);
    }

    // Λ J Σ Jᵀ Λ: its diagonal, and FROMP's (c, c) blocks across examples.
    const auto p = linearize::head_probabilities(m, c.x1, c.columns);
    const auto lam = softmax_hessian(p);
    const auto lj = torch::einsum("nac,ncp->nap", {lam, j1});
    const auto prob_cov = torch::einsum("nap,p,nbp->nab", {lj, sigma, lj});
    CHECK(rel_err(linearize::probability_variance(m, c.x1, c.columns, var),
                  prob_cov.diagonal(0, 1, 2)) < 1e-10);
    const auto full = torch::einsum("nap,p,mbp->namb", {lj, sigma, lj});
    const auto fromp = linearize::fromp_kernels(m, c.x1, c.columns, var);
    REQUIRE(fromp.size(0) == static_cast<int64_t>(c.columns.size()));
    for (int64_t k = 0; k < fromp.size(0); ++k) {
      CHECK(rel_err(fromp[k], full.select(3, k).select(1, k)) < 1e-10);
    }

    // With a memory budget that fits one row, each row comes from its own backward pass (the
    // way a 100-way ImageNet head is computed); a smaller budget is refused with the estimate.
    const int64_t one_row = linearize::kernel_floats(m, c.x1, c.x1.size(0), 1);
    const auto blocks1 = linearize::class_kernels(m, c.x1, c.columns, var, one_row);
    const auto fromp1 = linearize::fromp_kernels(m, c.x1, c.columns, var, one_row);
    REQUIRE(blocks1.size(0) == static_cast<int64_t>(c.columns.size()));
    REQUIRE(fromp1.size(0) == static_cast<int64_t>(c.columns.size()));
    for (int64_t k = 0; k < fromp1.size(0); ++k) {
      CHECK(rel_err(blocks1[k], k11.select(3, k).select(1, k)) < 1e-10);
      CHECK(rel_err(fromp1[k], full.select(3, k).select(1, k)) < 1e-10);
    }
    CHECK_THROWS_WITH(linearize::fromp_kernels(m, c.x1, c.columns, var, one_row - 1),
                      Catch::Matchers::Contains("1 output row(s) would hold about"));
  }
}

TEST_CASE("curvature diagonals equal their definitions, streamed in batches", "[linearize]") {
  for (const auto& c : cases()) {
    CAPTURE(c.name);
    auto& m = *c.model;
    const auto x = torch::cat({c.x1, c.x2});
    const auto n = x.size(0);
    const auto targets = torch::arange(n) % static_cast<int64_t>(c.columns.size());
    const auto j = oracle_jacobian(m, x, c.columns);
    const auto p = linearize::head_probabilities(m, x, c.columns);
    // GGN: Σ_n diag(J_nᵀ Λ_n J_n); empirical Fisher: Σ_n (J_nᵀ (p_n − y_n))².
    const auto ggn = torch::einsum("nap,nab,nbp->p", {j, softmax_hessian(p), j});
    const auto e = p - torch::one_hot(targets, p.size(1)).to(p.dtype());
    const auto emp = torch::einsum("nap,na->np", {j, e}).square().sum(0);
    for (int64_t batch : {int64_t{2}, int64_t{256}}) {
      CAPTURE(batch);
      using linearize::Curvature;
      CHECK(rel_err(flat(linearize::curvature_diagonal(m, x, {}, c.columns, Curvature::GGN, batch)), ggn) < 1e-10);
      CHECK(rel_err(flat(linearize::curvature_diagonal(m, x, targets, c.columns, Curvature::EmpiricalFisher, batch)), emp) < 1e-10);
      // The exact true Fisher of softmax cross-entropy is the GGN.
      CHECK(rel_err(flat(linearize::curvature_diagonal(m, x, {}, c.columns, Curvature::TrueFisher, batch)), ggn) < 1e-10);
    }
  }
}

TEST_CASE("linearization rejects what it cannot handle", "[linearize]") {
  auto mlp = nn::MLP(std::vector<int64_t>{3, 2});
  const auto x = torch::randn({2, 3});
  CHECK_THROWS_WITH(linearize::logit_variance(*mlp, x, {0}, {torch::ones({2, 3})}),
                    Catch::Matchers::Contains("1 variance tensors for 2 parameters"));
  CHECK_THROWS_WITH(linearize::jacobian(*mlp, x, {5}), Catch::Matchers::Contains("outside [0, 2)"));
  CHECK_THROWS_AS(linearize::jacobian(*mlp, x, {}), UsageError);
  // A parameter outside any taped layer.
  struct Extra : nn::TapedModule {
    torch::nn::Linear fc{nullptr};
    torch::Tensor scale;
    Extra() {
      fc = register_module("fc", torch::nn::Linear(3, 2));
      scale = register_parameter("scale", torch::ones({1}));
    }
    torch::Tensor forward_taped(const torch::Tensor& in, nn::LayerTape* tape) override {
      return nn::tape_linear(fc, in, tape) * scale;
    }
  } extra;
  CHECK_THROWS_WITH(linearize::jacobian(extra, x, {0}), Catch::Matchers::Contains("not in a taped"));
  // A Linear applied per token ([N, T, F]): its per-example Jacobian is not s aᵀ of one row.
  struct PerToken : nn::TapedModule {
    torch::nn::Linear fc{nullptr};
    PerToken() { fc = register_module("fc", torch::nn::Linear(3, 2)); }
    torch::Tensor forward_taped(const torch::Tensor& in, nn::LayerTape* tape) override {
      return nn::tape_linear(fc, in, tape).mean(1);
    }
  } per_token;
  const auto tokens = torch::randn({2, 4, 3});
  CHECK(per_token.forward(tokens).sizes() == torch::IntArrayRef({2, 2}));  // untaped: fine
  CHECK_THROWS_WITH(linearize::logit_variance(per_token, tokens, {0, 1}, {torch::ones({2, 3}), torch::ones({2})}),
                    Catch::Matchers::Contains("a taped Linear needs [N, features] inputs, got 3 dimensions"));
}

TEST_CASE("memorable-example scores and per-class selection on hand-made numbers", "[memory]") {
  const auto p = torch::tensor({{0.9, 0.1}, {0.5, 0.5}, {0.2, 0.8}}, torch::kFloat64);
  // Tr Λ = Σ p(1 − p): 0.18, 0.5, 0.32
  CHECK(torch::allclose(memory::lambda_trace_scores(p), torch::tensor({0.18, 0.5, 0.32}, torch::kFloat64)));
  // Σ |e λ v| with y = (0, 1, 1), v by hand: 0.009 + 0.018, 0.0625 + 0.0625, 0.064 + 0.032
  const auto v = torch::tensor({{1.0, 2.0}, {0.5, 0.5}, {2.0, 1.0}}, torch::kFloat64);
  CHECK(torch::allclose(memory::mpe_scores(p, torch::tensor({0, 1, 1}), v),
                        torch::tensor({0.027, 0.125, 0.096}, torch::kFloat64)));
  const auto scores = torch::tensor({0.3, 0.9, 0.9, 0.1, 0.5});
  const auto labels = torch::tensor({1, 0, 0, 1, 1});
  CHECK(memory::select_top_per_class(scores, labels, 1) == std::vector<int64_t>{1, 4});
  CHECK(memory::select_top_per_class(scores, labels, 2) == std::vector<int64_t>{1, 2, 4, 0});
  CHECK(memory::select_top_per_class(scores, labels, 5) == std::vector<int64_t>{1, 2, 4, 0, 3});
  const auto r = memory::random_scores(1000, 3);
  CHECK(torch::equal(r, memory::random_scores(1000, 3)));
  CHECK(r.min().item<double>() >= 0.0);
  CHECK(r.max().item<double>() < 1.0);
  CHECK(std::abs(r.mean().item<double>() - 0.5) < 0.05);
}

TEST_CASE("class quotas: equal shares, a small class's unused slots go to the others", "[memory]") {
  // Oracle: hand out one slot at a time to the class with room that has the fewest so far
  // (ties to the first class) — the most balanced split, built independently.
  const auto one_at_a_time = [](const std::vector<int64_t>& counts, int64_t total) {
    std::vector<int64_t> q(counts.size(), 0);
    for (int64_t slot = 0; slot < total; ++slot) {
      int best = -1;
      for (size_t k = 0; k < counts.size(); ++k) {
        if (q[k] < counts[k] && (best < 0 || q[k] < q[best])) best = static_cast<int>(k);
      }
      if (best < 0) break;
      ++q[best];
    }
    return q;
  };
  CHECK(memory::class_quotas({10, 10}, 7) == std::vector<int64_t>{4, 3});  // as before: remainder first
  CHECK(memory::class_quotas({2, 10}, 6) == std::vector<int64_t>{2, 4});   // the small class gives all
  CHECK(memory::class_quotas({0, 3, 9}, 10) == std::vector<int64_t>{0, 3, 7});
  CHECK(memory::class_quotas({1, 2}, 5) == std::vector<int64_t>{1, 2});    // fewer than asked: all
  CHECK(memory::class_quotas({}, 5).empty());
  CHECK_THROWS_AS(memory::class_quotas({3}, -1), UsageError);
  std::mt19937 rng(5);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<int64_t> counts(1 + rng() % 7);
    int64_t sum = 0;
    for (auto& c : counts) sum += (c = rng() % 12);
    const int64_t total = rng() % 60;
    const auto q = memory::class_quotas(counts, total);
    INFO("trial " << trial << " total " << total);
    REQUIRE(q == one_at_a_time(counts, total));
    CHECK(std::accumulate(q.begin(), q.end(), int64_t{0}) == std::min(total, sum));
  }
}

TEST_CASE("a class-imbalanced task still gets the memory asked for, best scores per class", "[memory]") {
  torch::manual_seed(12);
  auto model = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{5, 6, 4}, nn::Activation::Tanh);
  model->to(torch::kFloat64);
  model->eval();
  data::Task task;
  task.id = 0;
  task.classes = {2, 0};
  task.train.inputs = torch::randn({12, 5}, torch::kFloat64);
  task.train.targets = torch::tensor({0, 0, 2, 0, 0, 0, 0, 0, 0, 2, 0, 0});  // class 2: two examples
  const auto m = memory::select_memory(*model, task, 6, memory::Selection::Random, 4);
  REQUIRE(m.size() == 6);
  CHECK(m.labels.eq(2).sum().item<int64_t>() == 2);
  CHECK(m.labels.eq(0).sum().item<int64_t>() == 4);
  // The four of class 0 are its four highest random scores.
  const auto r = memory::random_scores(12, 4);
  const auto members = task.train.targets.eq(0).nonzero().view(-1);
  const auto top = std::get<1>(r.index_select(0, members).topk(4));
  const auto expected = std::get<0>(members.index_select(0, top).sort());
  const auto taken = m.indices.masked_select(m.labels.eq(0));
  CHECK(torch::equal(std::get<0>(taken.sort()), expected));
}

TEST_CASE("per-example scores of a task equal their oracle; the memory knows its examples", "[memory]") {
  torch::manual_seed(11);
  auto model = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{5, 6, 4}, nn::Activation::Tanh);
  model->to(torch::kFloat64);
  model->eval();
  const auto opts = torch::TensorOptions(torch::kFloat64);
  data::Task task;
  task.id = 0;
  task.classes = {3, 1};
  task.train.inputs = torch::randn({12, 5}, opts);
  task.train.targets = torch::tensor({3, 1, 1, 3, 3, 1, 3, 1, 1, 3, 3, 1});
  const auto variances = random_variances(*model);
  const auto s = memory::score_examples(*model, task, variances);

  // Oracle: softmax over the head from a plain forward pass; J from one backward per output.
  const std::vector<int64_t> cols{3, 1};
  const auto p = torch::softmax(model->forward(task.train.inputs).index_select(1, torch::tensor(cols)), 1);
  const auto J = oracle_jacobian(*model, task.train.inputs, cols);       // [N, 2, P]
  const auto v = (J.pow(2) * flat(variances)).sum(2);                    // diag(JΣJᵀ) [N, 2]
  const auto y = torch::tensor({0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1});   // positions in the head
  const auto e = p - torch::one_hot(y, 2).to(torch::kFloat64);
  CHECK(rel_err(s.lambda_trace, (p * (1 - p)).sum(1)) < 1e-12);
  CHECK(rel_err(s.logit_variance, v.sum(1)) < 1e-10);
  CHECK(rel_err(s.mpe, (e * p * (1 - p) * v).abs().sum(1)) < 1e-10);
  CHECK(torch::equal(s.labels, task.train.targets));
  CHECK_FALSE(memory::score_examples(*model, task, {}).mpe.defined());

  // The memory records which examples it took: its inputs and scores are theirs, and in each
  // class no example left out scores higher than one taken.
  const auto m = memory::select_memory(*model, task, 4, memory::Selection::LambdaTrace, 0);
  REQUIRE(m.indices.numel() == 4);
  CHECK(torch::equal(m.inputs, task.train.inputs.index_select(0, m.indices)));
  CHECK(torch::equal(m.scores, s.lambda_trace.index_select(0, m.indices).to(m.scores.dtype())));
  for (int64_t c : cols) {
    const auto in_class = task.train.targets.eq(c);
    auto taken = torch::zeros({12}, torch::kBool);
    taken.index_fill_(0, m.indices, true);
    const double worst_taken = s.lambda_trace.masked_select(in_class & taken).min().item<double>();
    const double best_left = s.lambda_trace.masked_select(in_class & ~taken).max().item<double>();
    CHECK(worst_taken >= best_left);
  }
}

TEST_CASE("GLM predictives: probit and Monte Carlo against 1-D quadrature", "[linearize]") {
  const auto f = torch::tensor({{0.3, -0.4}, {2.0, 1.0}}, torch::kFloat64);
  // Zero variance: both equal the softmax.
  CHECK(torch::allclose(linearize::probit_predictive(f, torch::zeros_like(f)), torch::softmax(f, 1)));
  // Two classes: p_1 = E[sigmoid(d)], d = f1 − f0 ~ N(μ, s²), s² = V00 + V11 − 2 V01.
  const auto cov = torch::tensor({{{1.0, 0.3}, {0.3, 0.8}}, {{0.5, -0.2}, {-0.2, 2.0}}}, torch::kFloat64);
  auto gen = at::detail::createCPUGenerator(17);
  const int64_t samples = 40000;
  const auto mc = linearize::mc_glm_predictive(f, cov, samples, gen);
  for (int64_t n = 0; n < 2; ++n) {
    const double mu = (f[n][1] - f[n][0]).item<double>();
    const double s2 = (cov[n][0][0] + cov[n][1][1] - 2 * cov[n][0][1]).item<double>();
    double integral = 0, step = 1e-3;
    for (double z = -10; z < 10; z += step) {
      integral += step * std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI) /
                  (1 + std::exp(-(mu + std::sqrt(s2) * z)));
    }
    // Monte-Carlo standard error ≤ 0.5/√S = 0.0025; allow 4 of it.
    CHECK(std::abs(mc[n][1].item<double>() - integral) < 0.01);
  }
}

TEST_CASE("posterior sources: Laplace from the GGN, Adam's second moment", "[linearize]") {
  torch::manual_seed(4);
  auto mlp = nn::MLP(std::vector<int64_t>{3, 4, 2});
  mlp->to(torch::kFloat64);
  const auto x = torch::randn({6, 3}, torch::kFloat64);
  const auto ggn = linearize::curvature_diagonal(*mlp, x, {}, {0, 1}, linearize::Curvature::GGN);
  const auto q = posterior::laplace(mlp->parameters(), ggn, 2.0);
  CHECK(q.source() == "laplace");
  CHECK(torch::allclose(q.flat_precision(), flat(ggn) + 2.0));
  CHECK(torch::equal(q.flat_mean(), flat(mlp->parameters())));
  // The posterior plugs into the engine: the variance of a single-parameter-tensor change.
  CHECK(linearize::logit_variance(*mlp, x, {0, 1}, q.variance()).min().item<double>() > 0);

  torch::optim::Adam adam(mlp->parameters(), torch::optim::AdamOptions(1e-3));
  adam.zero_grad();
  mlp->forward(x).square().sum().backward();
  adam.step();
  const auto v = posterior::adam_second_moments(adam, mlp->parameters());
  // After one step v = (1 − β2) g².
  CHECK(torch::allclose(v[0], 0.001 * mlp->parameters()[0].grad().square()));
  const auto qa = posterior::from_adam_moments(mlp->parameters(), v, 100.0, 0.5);
  CHECK(qa.source() == "adam");
  CHECK(torch::allclose(qa.flat_variance(), (flat(v).sqrt() * 100.0 + 0.5).reciprocal()));
  CHECK_THROWS_AS(posterior::laplace(mlp->parameters(), {ggn[0]}, 1.0), UsageError);
}

TEST_CASE("a pooled convolution's per-example gradients: the fused CPU pass and the scatter-and-GEMM path equal autograd",
          "[linearize]") {
  // The scatter-and-GEMM path is what non-CPU devices run; both are checked against autograd
  // of t[n, r] · y(x_n) with respect to the weight and bias, one example and row at a time, for
  // several geometries, both dtypes, with and without bias.
  torch::manual_seed(11);
  struct Geometry { int64_t kernel, stride, padding, dilation, pool; nn::Activation act; };
  for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
    for (const auto& g : {Geometry{3, 1, 1, 1, 2, nn::Activation::ReLU}, Geometry{3, 2, 2, 2, 2, nn::Activation::Tanh},
                          Geometry{5, 1, 0, 1, 3, nn::Activation::ReLU}}) {
      for (const bool bias : {true, false}) {
        CAPTURE(dtype, g.kernel, g.stride, g.padding, g.dilation, g.pool, bias);
        torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 4, g.kernel).stride(g.stride).padding(g.padding)
                                   .dilation(g.dilation).bias(bias));
        conv->to(dtype);
        nn::LayerTape tape;
        const auto x = torch::randn({3, 3, 13, 12}, torch::TensorOptions(dtype));
        const auto y = nn::tape_conv2d_pool(conv, x, g.act, g.pool, &tape);
        REQUIRE(tape.entries().size() == 1);
        const auto& e = tape.entries()[0];
        REQUIRE(e.pooled());
        CHECK(torch::equal(y, torch::max_pool2d(nn::activate(conv->forward(x), g.act), g.pool)));
        auto t_shape = y.sizes().vec();
        t_shape.insert(t_shape.begin() + 1, 2);
        const auto t = torch::randn(t_shape, x.options());
        std::vector<torch::Tensor> ref_w, ref_b;
        for (int64_t n = 0; n < 3; ++n) {
          const auto yn = torch::max_pool2d(nn::activate(conv->forward(x.slice(0, n, n + 1)), g.act), g.pool);
          for (int64_t r = 0; r < 2; ++r) {
            std::vector<torch::Tensor> params{conv->weight};
            if (bias) params.push_back(conv->bias);
            const auto grads = torch::autograd::grad({(yn[0] * t[n][r]).sum()}, params, {}, /*retain_graph=*/true);
            ref_w.push_back(grads[0].reshape(-1));
            if (bias) ref_b.push_back(grads[1]);
          }
        }
        const auto want_w = torch::stack(ref_w).view({3, 2, -1});
        const double tol = dtype == torch::kFloat64 ? 1e-12 : 1e-5;
        for (const bool fused : {true, false}) {
          CAPTURE(fused);
          const auto [gw, gb] = fused ? linearize::detail::pooled_conv_grads(e, t)
                                      : linearize::detail::pooled_conv_grads_dense(e, t);
          CHECK(rel_err(gw, want_w) < tol);
          CHECK(gb.defined() == bias);
          if (bias) CHECK(rel_err(gb, torch::stack(ref_b).view({3, 2, -1})) < tol);
        }
      }
    }
  }
}

TEST_CASE("a pooled convolution's input signals equal autograd's backward through pooling, activation and convolution",
          "[linearize]") {
  torch::manual_seed(12);
  const auto opts = torch::TensorOptions(torch::kFloat64);
  struct Geometry { int64_t kernel, stride, padding, dilation, pool; nn::Activation act; };
  for (const auto& g : {Geometry{3, 1, 1, 1, 2, nn::Activation::ReLU}, Geometry{3, 2, 2, 2, 2, nn::Activation::Tanh},
                        Geometry{5, 1, 0, 1, 3, nn::Activation::ReLU}}) {
    CAPTURE(g.kernel, g.stride, g.padding, g.dilation, g.pool);
    torch::nn::Conv2d conv(torch::nn::Conv2dOptions(2, 3, g.kernel).stride(g.stride).padding(g.padding).dilation(g.dilation));
    conv->to(torch::kFloat64);
    for (const int64_t rows : {int64_t{1}, int64_t{5}}) {
      nn::LayerTape tape;
      const auto x = torch::randn({3, 2, 13, 11}, opts).requires_grad_(true);
      const auto y = nn::tape_conv2d_pool(conv, x, g.act, g.pool, &tape);
      const auto& e = tape.entries()[0];
      auto t_shape = y.sizes().vec();
      t_shape.insert(t_shape.begin() + 1, rows);
      const auto t = torch::randn(t_shape, opts);
      const auto fast = linearize::detail::pooled_conv_input_signals(e, t);
      std::vector<torch::Tensor> ref;
      for (int64_t r = 0; r < rows; ++r) {
        ref.push_back(torch::autograd::grad({y}, {x}, {t.select(1, r)}, /*retain_graph=*/true)[0]);
      }
      CHECK(rel_err(fast, torch::stack(ref, 1)) < 1e-12);
    }
  }
  // The model's promise is checked where it can be: the input must be the previous output.
  torch::nn::Conv2d a(torch::nn::Conv2dOptions(1, 2, 3)), b(torch::nn::Conv2dOptions(2, 2, 3));
  nn::LayerTape tape;
  const auto h = nn::tape_conv2d_pool(a, torch::randn({1, 1, 12, 12}), nn::Activation::ReLU, 2, &tape);
  CHECK_THROWS_AS(nn::tape_conv2d_pool(b, h * 2, nn::Activation::ReLU, 1, &tape, nn::TapeInput::PreviousOnly), UsageError);
  CHECK_NOTHROW(nn::tape_conv2d_pool(b, h, nn::Activation::ReLU, 1, &tape, nn::TapeInput::PreviousOnly));
  CHECK(tape.entries().back().input_from_previous);
}

TEST_CASE("memory estimates of the linearization, and kernels too large are refused up front", "[linearize]") {
  torch::manual_seed(2);
  auto mlp = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{6, 5, 4, 7}, nn::Activation::Tanh);
  const auto x = torch::randn({3, 6});
  // By hand: layer outputs 5 + 4 + 7 per row, layer inputs 6 + 5 + 4 once.
  CHECK(linearize::signal_floats_per_example(*mlp, x, 3) == 3 * 16 + 15);
  // LeNet-5 (convolutions taped with their pooling): pooled conv1 6x14x14 + pooled conv2
  // 16x5x5 + fc 120 + 84 + 9 outputs per row; inputs unfolded: 1x28x28 x 25, 6x14x14 x 25,
  // then 400 + 120 + 84.
  auto lenet = std::make_shared<nn::LeNet5Impl>(9);
  const auto img = torch::randn({2, 1, 28, 28});
  const int64_t outputs = 6 * 14 * 14 + 16 * 5 * 5 + 120 + 84 + 9;
  const int64_t inputs = 784 * 25 + 6 * 14 * 14 * 25 + 400 + 120 + 84;
  // conv1's signals come from conv2's through buffers with the rows padded to SIMD lanes
  // (counted as rows + 7): conv2's input 6x14x14 (no padding) and its 16x5x5 winners.
  const int64_t chained = (2 + 7) * (6 * 14 * 14 + 16 * 5 * 5);
  CHECK(linearize::signal_floats_per_example(*lenet, img, 2) == 2 * outputs + inputs + chained);
  // A kernel holds per input and row the outputs and twice the widest parameter tensor (fc1,
  // 120x400: its per-example gradients in chunks and concatenated); the layer inputs once per
  // input, as recorded (not unfolded: that happens a bounded chunk of inputs at a time), and
  // the pooled convolutions' winners (int64, two floats each) and slopes.
  const int64_t recorded = 784 + 6 * 14 * 14 + 400 + 120 + 84 + 3 * (6 * 14 * 14 + 16 * 5 * 5);
  CHECK(linearize::kernel_floats(*lenet, img, 5, 2) == 5 * (2 * (outputs + 2 * 120 * 400) + recorded + chained));
  CHECK_NOTHROW(linearize::check_kernel_memory(*mlp, x, 1000, 10));
  CHECK_THROWS_WITH(linearize::check_kernel_memory(*mlp, x, int64_t{1} << 30, 10),
                    Catch::Matchers::Contains("use fewer memorable points per task"));
}

TEST_CASE("the threaded convolution chunks give the serial results", "[linearize]") {
  // One thread runs the chunks in a loop, four run them in parallel (each single-threaded).
  // LibTorch's own threaded kernels (conv backward, GEMMs) round differently with other
  // thread counts, so the comparison is to float32 rounding, not bit for bit.
  torch::manual_seed(4);
  auto lenet = std::make_shared<nn::LeNet5Impl>(10);
  lenet->eval();
  const auto x = torch::randn({37, 1, 28, 28});
  const auto y = torch::randint(0, 10, {37});
  const auto v = random_variances(*lenet);
  const std::vector<int64_t> cols{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  const auto var1 = linearize::logit_variance(*lenet, x, cols, v);
  const auto ggn1 = linearize::curvature_diagonal(*lenet, x, y, cols, linearize::Curvature::GGN);
  at::set_num_threads(4);
  const auto var4 = linearize::logit_variance(*lenet, x, cols, v);
  const auto ggn4 = linearize::curvature_diagonal(*lenet, x, y, cols, linearize::Curvature::GGN);
  at::set_num_threads(before);
  INFO("max relative difference " << ((var1 - var4).abs() / var4.abs()).max().item<double>());
  CHECK(torch::allclose(var1, var4, 1e-5, 0));
  REQUIRE(ggn1.size() == ggn4.size());
  for (size_t k = 0; k < ggn1.size(); ++k) {
    INFO("tensor " << k << " max difference " << (ggn1[k] - ggn4[k]).abs().max().item<double>() << " of max " << ggn1[k].abs().max().item<double>());
    CHECK(torch::allclose(ggn1[k], ggn4[k], 1e-5, 1e-5 * ggn1[k].abs().max().item<double>()));
  }
}
