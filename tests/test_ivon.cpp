// IVON against independent computations: a scalar re-derivation of METHODS.md §1 in plain
// loops, the positivity invariant, the closed-form Bayesian linear-regression posterior,
// exact resume, and the faults of the reference implementation (METHODS.md §1, issue 3).
#include <torch/torch.h>

#include <cmath>
#include <sstream>

#include "catch.h"
#include "kprior/core/error.h"
#include "kprior/optim/grad_clip.h"
#include "kprior/optim/ivon.h"

using kprior::optim::HessApprox;
using kprior::optim::IVON;
using kprior::optim::IVONOptions;

namespace {

// ---- the scalar oracle ------------------------------------------------------------------
// Loss per element: c θ²/2 + d θ + e θ³/3, so ĝ = c θ + d + e θ² depends on the sample.
struct OracleGroup {
  double lr, ess, h0, b1, b2, wd, clip;
  std::vector<double> c, d, e, m, g, h;
};

double hand_noise(int call, int i) { return 1.5 * std::sin(1.3 * call + 0.7 * i + 0.1); }

struct OracleRun {
  std::vector<OracleGroup> groups;
  int samples_per_step;
  bool price, debias, rescale;
  int clipped = 0;  // how often the clip was active (so the test is not vacuous)

  void run(int steps) {
    int call = 0;
    for (int t = 1; t <= steps; ++t) {
      std::vector<std::vector<double>> gsum, nsum;
      for (auto& gr : groups) {
        gsum.emplace_back(gr.m.size(), 0.0);
        nsum.emplace_back(gr.m.size(), 0.0);
      }
      for (int k = 0; k < samples_per_step; ++k) {
        for (size_t q = 0; q < groups.size(); ++q, ++call) {
          auto& gr = groups[q];
          for (size_t i = 0; i < gr.m.size(); ++i) {
            const double sigma = 1.0 / std::sqrt(gr.ess * (gr.h[i] + gr.wd));
            const double theta = gr.m[i] + hand_noise(call, static_cast<int>(i)) * sigma;
            const double grad = gr.c[i] * theta + gr.d[i] + gr.e[i] * theta * theta;
            gsum[q][i] += grad;
            nsum[q][i] += price ? (theta - gr.m[i]) * grad : grad * grad;
          }
        }
      }
      for (size_t q = 0; q < groups.size(); ++q) {
        auto& gr = groups[q];
        for (size_t i = 0; i < gr.m.size(); ++i) {
          const double gbar = gsum[q][i] / samples_per_step;
          const double nu = nsum[q][i] / samples_per_step;
          gr.g[i] = gr.b1 * gr.g[i] + (1 - gr.b1) * gbar;
          const double hhat = price ? gr.ess * nu * (gr.h[i] + gr.wd) : gr.ess * nu;
          const double h = gr.h[i];
          gr.h[i] = gr.b2 * h + (1 - gr.b2) * hhat +
                    0.5 * (1 - gr.b2) * (1 - gr.b2) * (h - hhat) * (h - hhat) / (h + gr.wd);
          const double lr = rescale ? gr.lr * (gr.h0 + gr.wd) : gr.lr;
          const double b = debias ? 1 - std::pow(gr.b1, t) : 1.0;
          double step = (gr.g[i] / b + gr.wd * gr.m[i]) / (gr.h[i] + gr.wd);
          if (std::abs(step) > gr.clip) {
            step = step > 0 ? gr.clip : -gr.clip;
            ++clipped;
          }
          gr.m[i] -= lr * step;
        }
      }
    }
  }
};

OracleRun make_oracle(bool price, bool debias, bool rescale) {
  OracleRun run;
  run.samples_per_step = 2;
  run.price = price;
  run.debias = debias;
  run.rescale = rescale;
  // Group 0: small weight decay, no clip; group 1: large weight decay, tight clip.
  run.groups.push_back({0.05, 30.0, 0.7, 0.8, 0.95, 1e-3, INFINITY,
                        {1.0, 2.5, 0.4}, {0.3, -1.0, 0.2}, {0.1, 0.0, -0.2},
                        {0.5, -1.2, 2.0}, {0, 0, 0}, {0.7, 0.7, 0.7}});
  run.groups.push_back({0.2, 12.0, 1.3, 0.6, 0.9, 0.5, 0.05,
                        {3.0, 0.2}, {-2.0, 1.5}, {0.3, 0.05},
                        {-0.4, 0.9}, {0, 0}, {1.3, 1.3}});
  return run;
}

// Runs the library on the same problem as `oracle` (before oracle.run()).
std::pair<std::vector<torch::Tensor>, std::unique_ptr<IVON>> run_library(
    const OracleRun& oracle, int steps, bool fused, torch::Device device = torch::kCPU) {
  std::vector<torch::Tensor> params;
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (const auto& gr : oracle.groups) {
    auto p = torch::tensor(gr.m, torch::kFloat64).to(device).requires_grad_();
    params.push_back(p);
    auto opts = std::make_unique<IVONOptions>(
        IVONOptions(gr.lr, gr.ess).hess_init(gr.h0).beta1(gr.b1).beta2(gr.b2)
            .weight_decay(gr.wd).clip_radius(gr.clip));
    groups.emplace_back(std::vector<torch::Tensor>{p}, std::move(opts));
  }
  auto calls = std::make_shared<int>(0);
  auto defaults = IVONOptions(1.0, 1.0)
                      .mc_samples(oracle.samples_per_step)
                      .hess_approx(oracle.price ? HessApprox::Price : HessApprox::GradSq)
                      .debias(oracle.debias)
                      .rescale_lr(oracle.rescale)
                      .fused_cpu(fused)
                      .noise([calls](size_t, size_t, const torch::Tensor& like) {
                        const int call = (*calls)++;
                        auto eps = torch::empty({like.numel()}, torch::kFloat64);
                        for (int64_t i = 0; i < like.numel(); ++i) {
                          eps[i] = hand_noise(call, static_cast<int>(i));
                        }
                        return eps.view(like.sizes());
                      });
  auto opt = std::make_unique<IVON>(std::move(groups), defaults);
  for (int t = 0; t < steps; ++t) {
    opt->step([&] {
      opt->zero_grad();
      torch::Tensor loss = torch::zeros({}, torch::TensorOptions(torch::kFloat64).device(device));
      for (size_t q = 0; q < params.size(); ++q) {
        const auto& gr = oracle.groups[q];
        const auto c = torch::tensor(gr.c, torch::kFloat64).to(device);
        const auto d = torch::tensor(gr.d, torch::kFloat64).to(device);
        const auto e = torch::tensor(gr.e, torch::kFloat64).to(device);
        const auto& th = params[q];
        loss = loss + (c * th * th / 2 + d * th + e * th * th * th / 3).sum();
      }
      loss.backward();
      return loss;
    });
  }
  return {params, std::move(opt)};
}

void check_close(const torch::Tensor& actual, const std::vector<double>& expected) {
  REQUIRE(actual.numel() == static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    const double a = actual.cpu().reshape(-1)[static_cast<int64_t>(i)].item<double>();
    CHECK(std::abs(a - expected[i]) <= 1e-12 * (1.0 + std::abs(expected[i])));
  }
}

}  // namespace

TEST_CASE("IVON update equals a scalar re-derivation of the published rule", "[optim]") {
  struct Config { bool price, debias, rescale; int samples; };
  for (const Config cfg : {Config{true, true, true, 2}, Config{false, false, false, 2},
                           Config{true, false, true, 2}, Config{false, true, true, 1}}) {
    for (bool fused : {true, false}) {
      CAPTURE(cfg.price, cfg.debias, cfg.rescale, cfg.samples, fused);
      auto oracle = make_oracle(cfg.price, cfg.debias, cfg.rescale);
      oracle.samples_per_step = cfg.samples;
      auto [params, opt] = run_library(oracle, 5, fused);
      oracle.run(5);
      CHECK(oracle.clipped > 0);
      CHECK(opt->step_count() == 5);
      const auto h = opt->hessian();
      const auto g = opt->momentum();
      for (size_t q = 0; q < params.size(); ++q) {
        check_close(params[q].detach(), oracle.groups[q].m);
        check_close(h[q], oracle.groups[q].h);
        check_close(g[q], oracle.groups[q].g);
      }
    }
  }
}

TEST_CASE("IVON keeps h + delta positive for any Hessian estimate", "[optim]") {
  // A linear loss with huge random slopes makes ĥ = λ (θ−m)·ĝ (h+δ) swing far negative.
  torch::manual_seed(1);
  for (double beta2 : {0.0, 0.3, 0.9, 0.999}) {
    auto w = torch::zeros({50}, torch::kFloat64).requires_grad_();
    IVON opt({w}, IVONOptions(0.01, 100.0).beta2(beta2).weight_decay(1e-3).seed(5));
    for (int t = 0; t < 100; ++t) {
      const auto slope = torch::randn({50}, torch::kFloat64) * 1e4;
      opt.step([&] {
        opt.zero_grad();
        auto loss = (w * slope).sum();
        loss.backward();
        return loss;
      });
      const auto hpd = opt.hessian()[0] + 1e-3;
      REQUIRE(hpd.min().item<double>() > 0);
      REQUIRE(hpd.isfinite().all().item<bool>());
    }
  }
}

TEST_CASE("IVON finds the mean-field posterior of Bayesian linear regression", "[optim]") {
  // Loss = (1/N) Σ ½ (y_i − x_iᵀw)², ess = N, weight decay δ: the posterior is Gaussian with
  // precision A = XᵀX + Nδ I and mean μ = A⁻¹ Xᵀy. The mean-field Gaussian optimum has the
  // same mean and precision diag(A) (its variance is 1/diag(A), not diag(A⁻¹)).
  torch::manual_seed(3);
  const int64_t n = 200, dim = 3;
  const double delta = 0.05;
  auto x = torch::randn({n, dim}, torch::kFloat64);
  x.select(1, 1).add_(x.select(1, 0) * 0.8);  // correlated features
  const auto y = x.matmul(torch::tensor({1.0, -2.0, 0.5}, torch::kFloat64)) +
                 0.3 * torch::randn({n}, torch::kFloat64);
  const auto precision = x.t().matmul(x) + n * delta * torch::eye(dim, torch::kFloat64);
  const auto mu = torch::linalg_solve(precision, x.t().matmul(y));

  auto w = torch::zeros({dim}, torch::kFloat64).requires_grad_();
  IVON opt({w}, IVONOptions(0.02, static_cast<double>(n)).weight_decay(delta).beta2(0.999)
                    .mc_samples(4).seed(11));
  auto mean_avg = torch::zeros({dim}, torch::kFloat64);
  auto prec_avg = torch::zeros({dim}, torch::kFloat64);
  const int steps = 6000, burn_in = 3000;
  for (int t = 0; t < steps; ++t) {
    opt.step([&] {
      opt.zero_grad();
      auto loss = 0.5 * (y - x.matmul(w)).square().mean();
      loss.backward();
      return loss;
    });
    if (t >= burn_in) {
      mean_avg += w.detach();
      prec_avg += opt.posterior().flat_precision();
    }
  }
  mean_avg /= (steps - burn_in);
  prec_avg /= (steps - burn_in);
  // Stated tolerances: mean within 1% of ‖μ‖, each precision within 5% of diag(A).
  CHECK((mean_avg - mu).norm().item<double>() < 0.01 * mu.norm().item<double>());
  const auto rel = ((prec_avg - precision.diag()) / precision.diag()).abs();
  CAPTURE(prec_avg, precision.diag());
  CHECK(rel.max().item<double>() < 0.05);
}

TEST_CASE("IVON save -> load -> continue equals an uninterrupted run", "[optim]") {
  auto make_model = [] {
    torch::manual_seed(7);
    return torch::nn::Linear(4, 3);
  };
  torch::manual_seed(8);
  const auto xs = torch::randn({6, 5, 4});
  const auto ys = torch::randint(0, 3, {6, 5});
  auto train = [&](torch::nn::Linear& model, IVON& opt, int from, int to) {
    for (int t = from; t < to; ++t) {
      {
        auto s = opt.sampled_params(true);
        torch::nn::functional::cross_entropy(model->forward(xs[t]), ys[t]).backward();
      }
      opt.step();
    }
  };
  const auto opts = IVONOptions(0.1, 50.0).beta2(0.9).seed(42);
  auto reference = make_model();
  IVON ref_opt(reference->parameters(), opts);
  train(reference, ref_opt, 0, 6);

  auto first = make_model();
  IVON first_opt(first->parameters(), opts);
  train(first, first_opt, 0, 3);
  std::stringstream buffer;
  torch::save(first_opt, buffer);

  // A fresh process would build the model anew; its parameters come back from the state.
  torch::manual_seed(99);
  auto resumed = torch::nn::Linear(4, 3);
  IVON resumed_opt(resumed->parameters(), IVONOptions(0.5, 1.0));  // options come from the file
  torch::load(resumed_opt, buffer);
  CHECK(resumed_opt.step_count() == 3);
  train(resumed, resumed_opt, 3, 6);
  CHECK(torch::equal(resumed->weight, reference->weight));
  CHECK(torch::equal(resumed->bias, reference->bias));
  CHECK(torch::equal(resumed_opt.hessian()[0], ref_opt.hessian()[0]));

  SECTION("state follows the parameters' dtype") {
    auto dbl = torch::nn::Linear(4, 3);
    dbl->to(torch::kFloat64);
    IVON dbl_opt(dbl->parameters(), opts);
    std::stringstream again;
    torch::save(ref_opt, again);
    torch::load(dbl_opt, again);
    CHECK(dbl_opt.hessian()[0].scalar_type() == torch::kFloat64);
    CHECK(torch::allclose(dbl_opt.hessian()[0].to(torch::kFloat32), ref_opt.hessian()[0]));
  }
  SECTION("a mismatched optimizer is rejected with a clear error") {
    auto other = torch::nn::Linear(5, 3);
    IVON other_opt(other->parameters(), opts);
    std::stringstream again;
    torch::save(ref_opt, again);
    CHECK_THROWS_WITH(torch::load(other_opt, again), Catch::Matchers::Contains("shape of ivon/group0/param0"));
  }
}

TEST_CASE("IVON sample guard restores the mean, also after an exception", "[optim]") {
  auto w = torch::tensor({1.0, 2.0, 3.0}).requires_grad_();
  IVON opt({w}, IVONOptions(0.1, 10.0));
  const auto mean = w.detach().clone();
  {
    auto s = opt.sampled_params(true);
    CHECK_FALSE(torch::equal(w.detach(), mean));  // a sample is written
    CHECK_THROWS_AS(opt.sampled_params(true), kprior::Error);  // no nesting
  }
  CHECK(torch::equal(w.detach(), mean));
  CHECK(opt.pending_samples() == 1);
  opt.step();
  const auto m1 = w.detach().clone();
  try {
    auto s = opt.sampled_params(true);
    throw std::runtime_error("forward failed");
  } catch (const std::runtime_error&) {
  }
  CHECK(torch::equal(w.detach(), m1));
  CHECK(opt.pending_samples() == 0);  // the failed sample is not recorded
  CHECK_THROWS_WITH(opt.step(), Catch::Matchers::Contains("no sample since the last step"));
  // A closure that throws also leaves the mean in place.
  CHECK_THROWS(opt.step([]() -> torch::Tensor { throw std::runtime_error("boom"); }));
  CHECK(torch::equal(w.detach(), m1));
}

TEST_CASE("IVON's default sample is a prediction sample, as the published sampled_params()", "[optim]") {
  // The published `sampled_params(train=False)`: code ported from its Bayesian-model-average
  // example must neither record a gradient nor touch .grad.
  auto w = torch::tensor({1.0, -2.0}, torch::kFloat64).requires_grad_();
  IVON opt({w}, IVONOptions(0.1, 10.0));
  (w * w).sum().backward();  // a gradient the user has not consumed yet: 2w
  const auto grad = w.grad().clone();
  const auto mean = w.detach().clone();
  torch::Tensor sampled;
  {
    auto s = opt.sampled_params();
    sampled = w.detach().clone();
  }
  CHECK_FALSE(torch::equal(sampled, mean));  // a sample was written ...
  CHECK(torch::equal(w.detach(), mean));     // ... and the mean restored
  CHECK(torch::equal(w.grad(), grad));       // the gradient is untouched
  CHECK(opt.pending_samples() == 0);         // nothing recorded
  CHECK_THROWS_WITH(opt.step(), Catch::Matchers::Contains("no sample since the last step"));
  {
    auto s = opt.sampled_params(true);       // a training sample zeroes and records
    CHECK(w.grad().abs().sum().item<double>() == 0.0);
  }
  CHECK(opt.pending_samples() == 1);
}

TEST_CASE("IVON leaves frozen parameters alone and treats a missing gradient as zero", "[optim]") {
  auto used = torch::tensor({0.5, -0.5}, torch::kFloat64).requires_grad_();
  auto unused = torch::tensor({2.0, -3.0}, torch::kFloat64).requires_grad_();
  auto frozen = torch::tensor({7.0, 8.0}, torch::kFloat64);  // requires_grad = false
  const double lr = 0.1, ess = 20, h0 = 0.5, wd = 0.01, b1 = 0.9, b2 = 0.99;
  IVON opt({used, unused, frozen},
           IVONOptions(lr, ess).hess_init(h0).weight_decay(wd).beta1(b1).beta2(b2));
  {
    auto s = opt.sampled_params(true);
    CHECK(torch::equal(frozen, torch::tensor({7.0, 8.0}, torch::kFloat64)));
    (used * used).sum().backward();
  }
  opt.step();
  CHECK(torch::equal(frozen, torch::tensor({7.0, 8.0}, torch::kFloat64)));
  CHECK(opt.trainable_params().size() == 2);
  // Zero gradient by hand: g = 0, ĥ = 0, h = β2 h0 + ½(1−β2)² h0²/(h0+δ),
  // m ← m − α(h0+δ) · (0/(1−β1) + δ m)/(h + δ).
  const double h = b2 * h0 + 0.5 * (1 - b2) * (1 - b2) * h0 * h0 / (h0 + wd);
  for (int i = 0; i < 2; ++i) {
    const double m0 = i == 0 ? 2.0 : -3.0;
    const double expected = m0 - lr * (h0 + wd) * (wd * m0) / (h + wd);
    CHECK(unused[i].item<double>() == Approx(expected).epsilon(1e-14));
    CHECK(opt.hessian()[1][i].item<double>() == Approx(h).epsilon(1e-14));
  }
}

TEST_CASE("IVON: a group added later, and parameters moved after construction, get their state", "[optim]") {
  const double lr = 0.1, ess = 20, h0 = 0.5, wd = 0.01;
  SECTION("add_param_group: posterior, hessian and save before any step") {
    auto p = torch::tensor({0.5, -0.5}, torch::kFloat64).requires_grad_();
    auto q = torch::tensor({1.0, 2.0, 3.0}, torch::kFloat64).requires_grad_();
    IVON opt({p}, IVONOptions(lr, ess).hess_init(h0).weight_decay(wd));
    opt.add_param_group(torch::optim::OptimizerParamGroup({q}));
    const auto post = opt.posterior();
    REQUIRE(post.variance().size() == 2);
    // σ² = 1 / (ess (h0 + δ)) before the first step (METHODS.md §1).
    CHECK(torch::allclose(post.variance()[1], torch::full({3}, 1.0 / (ess * (h0 + wd)), torch::kFloat64)));
    CHECK(torch::equal(opt.hessian()[1], torch::full({3}, h0, torch::kFloat64)));
    CHECK(opt.momentum().size() == 2);
    torch::serialize::OutputArchive archive;
    opt.save(archive);
  }
  SECTION("model->to(kFloat64) after the optimizer was built: as if built in float64") {
    auto moved = torch::tensor({0.5f, -0.25f}).requires_grad_();
    IVON opt({moved}, IVONOptions(lr, ess).hess_init(h0).weight_decay(wd).seed(3));
    moved.set_data(moved.data().to(torch::kFloat64));  // what Module::to does
    auto fresh = torch::tensor({0.5, -0.25}, torch::kFloat64).requires_grad_();
    IVON ref({fresh}, IVONOptions(lr, ess).hess_init(h0).weight_decay(wd).seed(3));
    for (int step = 0; step < 3; ++step) {
      for (auto* o : {&opt, &ref}) {
        auto& w = o == &opt ? moved : fresh;
        {
          auto sample = o->sampled_params(true);
          (w * w * w).sum().backward();
        }
        o->step();
        w.mutable_grad().zero_();
      }
    }
    CHECK(moved.scalar_type() == torch::kFloat64);
    CHECK(opt.hessian()[0].scalar_type() == torch::kFloat64);
    CHECK(torch::equal(moved, fresh));
    CHECK(torch::equal(opt.hessian()[0], ref.hessian()[0]));
  }
}

TEST_CASE("IVON options are validated with errors naming the field", "[optim]") {
  auto w = torch::zeros({2}).requires_grad_();
  auto rejects = [&](const IVONOptions& o, const std::string& field) {
    CAPTURE(field);
    CHECK_THROWS_WITH(IVON({w}, o), Catch::Matchers::Contains(field));
  };
  rejects(IVONOptions(0.1, 0.0), "ess must be > 0");
  rejects(IVONOptions(0.1, -5.0), "ess must be > 0");
  rejects(IVONOptions(-0.1, 1.0), "lr must be > 0");
  rejects(IVONOptions(0.1, 1.0).hess_init(0.0), "hess_init must be > 0");
  rejects(IVONOptions(0.1, 1.0).beta1(1.5), "beta1 must be in [0, 1]");
  rejects(IVONOptions(0.1, 1.0).beta2(-0.1), "beta2 must be in [0, 1]");
  rejects(IVONOptions(0.1, 1.0).beta1(1.0), "beta1 = 1 with debias");
  rejects(IVONOptions(0.1, 1.0).weight_decay(-1.0), "weight_decay must be >= 0");
  rejects(IVONOptions(0.1, 1.0).clip_radius(0.0), "clip_radius must be > 0");
  rejects(IVONOptions(0.1, 1.0).mc_samples(0), "mc_samples must be >= 1");
  CHECK_NOTHROW(IVON({w}, IVONOptions(0.1, 1.0).beta1(1.0).debias(false)));
  // A bad group option is caught too.
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{w},
                      std::make_unique<IVONOptions>(IVONOptions(0.1, 1.0).hess_init(-1)));
  CHECK_THROWS_AS(IVON(std::move(groups), IVONOptions(0.1, 1.0)), kprior::UsageError);
}

TEST_CASE("IVON posterior: variance 1/(ess (h + delta)), BMA of sampled softmaxes", "[optim]") {
  torch::manual_seed(2);
  auto model = torch::nn::Linear(3, 4);
  IVON opt(model->parameters(), IVONOptions(0.1, 25.0).hess_init(0.3).weight_decay(0.1));
  const auto q = opt.posterior();
  REQUIRE(q.num_tensors() == 2);
  CHECK(q.source() == "ivon");
  CHECK(q.numel() == 4 * 3 + 4);
  CHECK(torch::allclose(q.flat_variance(), torch::full({16}, 1.0 / (25.0 * (0.3 + 0.1)))));
  CHECK(torch::equal(q.flat_mean(), torch::cat({model->weight.detach().reshape(-1), model->bias.detach()})));

  const auto x = torch::randn({5, 3});
  auto forward = [&](const torch::Tensor& in) { return model->forward(in); };
  auto params = opt.trainable_params();
  // Independent Monte-Carlo average: draw the same samples by hand from an equally seeded
  // generator, evaluate the linear model directly.
  auto gen_a = at::detail::createCPUGenerator(123);
  auto gen_b = at::detail::createCPUGenerator(123);
  const auto bma = kprior::posterior::bma_probabilities(forward, params, q, x, 8, gen_a);
  auto manual = torch::zeros({5, 4});
  for (int s = 0; s < 8; ++s) {
    const auto theta = q.sample(gen_b);
    manual += torch::softmax(x.matmul(theta[0].t()) + theta[1], -1);
  }
  CHECK(torch::allclose(bma, manual / 8, 1e-6, 1e-7));
  CHECK(torch::equal(model->weight.detach(), q.mean()[0]));  // parameters restored
  CHECK(torch::allclose(bma.sum(-1), torch::ones({5})));
}

TEST_CASE("IVON's default CPU noise is the same for any number of threads", "[optim]") {
  auto run = [](int threads) {
    const int before = torch::get_num_threads();
    torch::set_num_threads(threads);
    auto w = torch::zeros({70000}).requires_grad_();  // several noise chunks
    IVON opt({w}, IVONOptions(0.1, 10.0).seed(9));
    torch::Tensor sample;
    {
      auto s = opt.sampled_params(true);
      sample = w.detach().clone();
      w.sum().backward();
    }
    torch::set_num_threads(before);
    return sample;
  };
  const auto one = run(1);
  CHECK(torch::equal(one, run(2)));
  // σ = 1/sqrt(ess (h0 + δ)): the noise has that scale.
  const double sigma = 1.0 / std::sqrt(10.0 * (1.0 + 1e-4));
  CHECK(one.std().item<double>() == Approx(sigma).epsilon(0.02));
}

TEST_CASE("IVON's multi-tensor path: seeded noise of scale sigma, resumable, any layout", "[optim]") {
  // The path CUDA parameters take, forced on the CPU. Its default noise is one normal_ over
  // all parameters from the seeded generator, split into views laid out like each parameter.
  auto make = [](bool channels_last) {
    torch::manual_seed(5);
    auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3));
    conv->to(torch::kFloat64);
    if (channels_last) {
      conv->weight.set_data(conv->weight.data().contiguous(torch::MemoryFormat::ChannelsLast));
    }
    return conv;
  };
  const auto x = torch::randn({4, 3, 6, 6}, torch::kFloat64);
  const auto opts = IVONOptions(0.05, 200.0).hess_init(0.4).beta2(0.9).seed(11).fused_cpu(false);
  auto train = [&](torch::nn::Conv2d& conv, IVON& opt, int steps) {
    for (int t = 0; t < steps; ++t) {
      {
        auto s = opt.sampled_params(true);
        conv->forward(x).square().mean().backward();
      }
      opt.step();
    }
  };
  SECTION("the sample is m + eps / sqrt(ess (h + delta)) with eps ~ N(0, 1), seeded") {
    auto a = make(false), b = make(false);
    IVON opt_a(a->parameters(), opts), opt_b(b->parameters(), opts);
    const auto mean = a->weight.detach().clone();
    torch::Tensor eps_a, eps_b;
    {
      auto s = opt_a.sampled_params(true);
      eps_a = (a->weight.detach() - mean) * std::sqrt(200.0 * (0.4 + 1e-4));
    }
    {
      auto s = opt_b.sampled_params(true);
      eps_b = (b->weight.detach() - mean) * std::sqrt(200.0 * (0.4 + 1e-4));
    }
    CHECK(torch::equal(eps_a, eps_b));           // the same seed, the same noise
    CHECK(torch::equal(a->weight.detach(), mean));  // the mean is back
    CHECK(eps_a.std().item<double>() == Approx(1.0).epsilon(0.15));  // 216 draws
    CHECK(std::abs(eps_a.mean().item<double>()) < 0.25);
  }
  SECTION("save -> load -> continue equals an uninterrupted run (generator state saved)") {
    auto reference = make(false);
    IVON ref_opt(reference->parameters(), opts);
    train(reference, ref_opt, 4);
    auto first = make(false);
    IVON first_opt(first->parameters(), opts);
    train(first, first_opt, 2);
    std::stringstream buffer;
    torch::save(first_opt, buffer);
    auto resumed = make(false);
    IVON resumed_opt(resumed->parameters(), opts);
    torch::load(resumed_opt, buffer);
    train(resumed, resumed_opt, 2);
    CHECK(torch::equal(resumed->weight, reference->weight));
    CHECK(torch::equal(resumed_opt.hessian()[0], ref_opt.hessian()[0]));
  }
  SECTION("channels-last weights: state in their layout, the same update as contiguous ones") {
    auto flat = make(false), nhwc = make(true);
    REQUIRE(nhwc->weight.is_contiguous(torch::MemoryFormat::ChannelsLast));
    REQUIRE(!nhwc->weight.is_contiguous());
    // The same ε at each logical position for both (the default noise follows memory order).
    auto noise = [](size_t, size_t param, const torch::Tensor& like) {
      return torch::sin(torch::arange(like.numel(), torch::kFloat64) * 0.37 + double(param))
          .view(like.sizes());
    };
    IVON opt_flat(flat->parameters(), IVONOptions(opts).noise(noise));
    IVON opt_nhwc(nhwc->parameters(), IVONOptions(opts).noise(noise));
    train(flat, opt_flat, 3);
    train(nhwc, opt_nhwc, 3);
    CHECK(opt_nhwc.hessian()[0].is_contiguous(torch::MemoryFormat::ChannelsLast));
    CHECK(opt_nhwc.momentum()[0].is_contiguous(torch::MemoryFormat::ChannelsLast));
    CHECK(torch::allclose(nhwc->weight, flat->weight, 1e-12, 1e-14));
    CHECK(torch::allclose(opt_nhwc.hessian()[0], opt_flat.hessian()[0], 1e-12, 1e-14));
    // Default noise on channels-last weights: the sample still has scale σ.
    IVON opt_default(nhwc->parameters(), opts);
    const auto mean = nhwc->weight.detach().clone();
    auto s = opt_default.sampled_params(true);
    const auto eps = (nhwc->weight.detach() - mean) * std::sqrt(200.0 * (0.4 + 1e-4));
    CHECK(eps.std().item<double>() == Approx(1.0).epsilon(0.15));
  }
}

// Run by scripts/gpu-check.sh on a CUDA machine (tag [cuda], not registered with CTest on
// CPU-only builds): the tensor-operation path on the GPU against the same scalar oracle.
TEST_CASE("IVON on CUDA equals the scalar oracle", "[cuda]") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: skipped");
    return;
  }
  // Two samples per step (price), and one sample per step (gradsq), which on LibTorch >= 2.2
  // takes the lerp form of the momentum; group 1's clip is active in both.
  struct Config { bool price; int samples; };
  for (const Config cfg : {Config{true, 2}, Config{false, 1}}) {
    CAPTURE(cfg.price, cfg.samples);
    auto oracle = make_oracle(cfg.price, true, true);
    oracle.samples_per_step = cfg.samples;
    auto [params, opt] = run_library(oracle, 5, true, torch::kCUDA);
    oracle.run(5);
    CHECK(oracle.clipped > 0);
    for (size_t q = 0; q < params.size(); ++q) {
      CHECK(params[q].device().is_cuda());
      CHECK(opt->hessian()[q].device().is_cuda());
      check_close(params[q].detach(), oracle.groups[q].m);
      check_close(opt->hessian()[q], oracle.groups[q].h);
    }
  }
}

TEST_CASE("clip_grad_norm scales as torch::nn::utils::clip_grad_norm_, both sides of the bound", "[optim]") {
  torch::manual_seed(9);
  for (double max_norm : {0.5, 1e3}) {  // clipped, and within the bound (left unchanged)
    CAPTURE(max_norm);
    std::vector<torch::Tensor> mine, theirs;
    for (auto shape : {std::vector<int64_t>{4, 3}, std::vector<int64_t>{3}, std::vector<int64_t>{2, 2, 3, 3}}) {
      auto g = torch::randn(shape);
      mine.push_back(torch::zeros(shape, torch::requires_grad()));
      theirs.push_back(torch::zeros(shape, torch::requires_grad()));
      mine.back().mutable_grad() = g.clone();
      theirs.back().mutable_grad() = g.clone();
    }
    mine.push_back(torch::zeros({2}, torch::requires_grad()));  // no gradient: skipped
    const double expected_norm = torch::nn::utils::clip_grad_norm_(theirs, max_norm);
    const auto norm = kprior::optim::clip_grad_norm(mine, max_norm);
    CHECK(norm.item<double>() == Approx(expected_norm).epsilon(1e-6));
    for (size_t i = 0; i < theirs.size(); ++i) CHECK(torch::allclose(mine[i].grad(), theirs[i].grad(), 1e-6, 0));
    // The bound holds after clipping (the norm of all gradients together).
    double sq = 0;
    for (size_t i = 0; i < theirs.size(); ++i) sq += mine[i].grad().square().sum().item<double>();
    CHECK(std::sqrt(sq) <= std::min(max_norm, expected_norm) * (1 + 1e-5));
  }
  CHECK_FALSE(kprior::optim::clip_grad_norm({torch::zeros({2})}, 1.0).defined());
}
