// Mixed precision and channels-last training (issue #8), on the CPU: bf16 autocast against a
// float64 oracle of bf16-rounded operands; the learner in bf16 against the same learner in
// fp32; a channels-last ResNet-18 against the contiguous one in float64 (every linearized
// path: MPE memory, Laplace GGN, FROMP kernels, predictive variances) and through a checkpoint.
#include <torch/torch.h>

#include <cmath>

#include "blobs.h"
#include "catch.h"
#include "kprior/checkpoint/tree.h"
#include "kprior/core/allocator.h"
#include "kprior/core/error.h"
#include "kprior/linearize/linearize.h"
#include "kprior/nn/lenet5.h"
#include "kprior/nn/memory_format.h"
#include "kprior/nn/mlp.h"
#include "kprior/nn/precision.h"
#include "kprior/nn/resnet.h"
#include "kprior/regularize/factory.h"
#include "kprior/optim/ivon.h"
#include "kprior/regularize/fromp.h"
#include "kprior/train/continual_learner.h"

using namespace kprior;

namespace {

// True when every element of the fp32 tensor `t` is a bf16 value.
bool on_bf16_grid(const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kFloat).equal(t); }

// |a - b| in units of bf16's spacing at b (2^(e-7) for |b| in [2^e, 2^(e+1))).
double bf16_ulps(const torch::Tensor& a, const torch::Tensor& b) {
  const auto bd = b.to(torch::kDouble);
  const auto spacing = torch::exp2(torch::floor(torch::log2(bd.abs().clamp_min(1e-30))) - 7);
  return ((a.to(torch::kDouble) - bd).abs() / spacing).max().item<double>();
}

torch::Tensor bf16_rounded(const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kDouble); }


}  // namespace

TEST_CASE("bf16 autocast of a training forward: float64 oracle of bf16-rounded operands", "[nn]") {
  torch::manual_seed(3);
  auto model = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{24, 7});  // one Linear layer
  const auto x = torch::randn({16, 24});
  const auto params = model->parameters();
  const auto w = params[0], b = params[1];
  REQUIRE(w.dim() == 2);
  const auto fp32 = model->forward_taped(x, nullptr).detach();
  // The product of the bf16-rounded input and weights, plus the rounded bias, in float64,
  // rounded once to bf16: what a bf16 GEMM with fp32 accumulation gives, to one rounding.
  const auto oracle = bf16_rounded(bf16_rounded(x).matmul(bf16_rounded(w).t()) + bf16_rounded(b));

  model->set_forward_precision(nn::Precision::BFloat16);
  const auto y = model->forward(x);
  CHECK(y.scalar_type() == torch::kFloat);  // logits come back in fp32
  CHECK(on_bf16_grid(y.detach()));          // ... but were computed in bf16
  CHECK(bf16_ulps(y.detach(), oracle) <= 1.0);
  CHECK_FALSE(y.detach().equal(fp32));

  // Backward outside autocast: fp32 gradients of the fp32 weights, from a bf16 GEMM
  // (dL/dW = 2 yᵀ x for L = Σ y²), so on the bf16 grid and close to the oracle's.
  y.pow(2).sum().backward();
  REQUIRE(w.grad().scalar_type() == torch::kFloat);
  CHECK(on_bf16_grid(w.grad()));
  const auto grad_oracle = (2 * bf16_rounded(y.detach())).t().matmul(bf16_rounded(x));
  const double scale = grad_oracle.abs().max().item<double>();
  CHECK((w.grad().to(torch::kDouble) - grad_oracle).abs().max().item<double>() <= scale * std::pow(2.0, -6));

  // Taped forwards (the linearization) are never autocast, nor fp32 forwards, nor float64
  // models.
  nn::LayerTape tape;
  CHECK(model->forward_taped(x, &tape).equal(fp32));
  {
    nn::ForwardPrecisionGuard guard(*model, nn::Precision::Float32);
    CHECK(model->forward(x).equal(fp32));
  }
  CHECK(model->forward_precision() == nn::Precision::BFloat16);  // the guard restored it
  model->to(torch::kDouble);
  const auto xd = x.to(torch::kDouble);
  CHECK(model->forward(xd).equal(model->forward_taped(xd, nullptr)));

  CHECK(nn::parse_precision("bf16") == nn::Precision::BFloat16);
  CHECK(nn::to_string(nn::parse_precision("fp32")) == "fp32");
  CHECK_THROWS_AS(nn::parse_precision("fp16"), UsageError);
}

TEST_CASE("the learner in bf16 learns as in fp32, with fp32 parameters and IVON state", "[train]") {
  const auto seq = data::make_split_sequence("blobs", testing::blobs(60, 1, 0.6), testing::blobs(30, 2, 0.6), {{0, 1}, {2, 3}}, 4);
  std::vector<torch::Tensor> final_params[2];
  double average[2];
  for (int bf16 = 0; bf16 < 2; ++bf16) {
    CAPTURE(bf16);
    torch::manual_seed(0);
    auto model = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{2, 16, 4});
    train::ContinualLearner learner(
        model, regularize::make_regularizers("fromp", {}),
        train::LearnerOptions().optimizer(train::OptimizerKind::IVON).epochs(8).batch_size(32).memory_per_task(10)
            .precision(bf16 ? nn::Precision::BFloat16 : nn::Precision::Float32));
    const auto r = train::run_sequence(learner, seq);
    CHECK(model->forward_precision() == nn::Precision::Float32);  // bf16 only inside the steps
    CHECK(r.task_incremental.at(0, 0) > 0.9);
    CHECK(r.task_incremental.at(1, 1) > 0.9);
    average[bf16] = r.task_incremental.average(1);
    for (const auto& p : model->parameters()) {
      CHECK(p.scalar_type() == torch::kFloat);
      final_params[bf16].push_back(p.detach().clone());
    }
    const auto q = learner.posterior();
    for (const auto& v : q.variance()) CHECK(v.scalar_type() == torch::kFloat);
    // Predictions and the boundary's Laplace/IVON work run in fp32: not rounded to bf16.
    // (On a fine line from class 0's blob to class 1's, which crosses their decision
    // boundary: the trained model is confident, so elsewhere its probabilities are 0 or 1.)
    const auto t = torch::linspace(0, 1, 4097).unsqueeze(1);
    const auto line = t * torch::tensor({{2.0f, 2.0f}}) + (1 - t) * torch::tensor({{-2.0f, -2.0f}});
    const auto pred = learner.predict(line, seq.tasks[0]);
    CHECK_FALSE(on_bf16_grid(pred.probs));
  }
  CHECK(std::abs(average[1] - average[0]) < 0.05);
  bool differ = false;  // the option took effect: bf16 rounding changed the trajectory
  for (size_t i = 0; i < final_params[0].size(); ++i) differ = differ || !final_params[0][i].equal(final_params[1][i]);
  CHECK(differ);
}

TEST_CASE("a channels-last ResNet-18 learns as the contiguous one, through a checkpoint too", "[train]") {
  // Float64 (so that the layouts' other summation orders stay at 1e-16): its per-example
  // gradients are hundreds of MiB, which kprior-run keeps off fresh mappings the same way.
  reuse_large_allocations();
  torch::manual_seed(5);
  const auto x = torch::randn({16, 1, 8, 8}, torch::kDouble);
  const auto y = torch::arange(16, torch::kLong) % 4;
  const auto seq = data::make_split_sequence("tiny", {x, y}, {x, y}, data::consecutive_groups(4, 2), 4);
  // SGD, not Adam: Adam's first step, lr·g/(|g| + ε), turns the last-bit differences of
  // gradients that are zero up to rounding into weight differences of order lr.
  const auto options = train::LearnerOptions().optimizer(train::OptimizerKind::SGD).lr(0.05).epochs(1).batch_size(8)
                           .memory_per_task(4).selection(memory::Selection::MPE);
  auto make = [&](nn::MemoryFormat format) {
    torch::manual_seed(7);
    auto model = std::make_shared<nn::ResNet18Impl>(nn::ResNetStem::Cifar, 4, 1);
    model->to(torch::kDouble);
    return std::make_unique<train::ContinualLearner>(model, regularize::make_regularizers("fromp", {}),
                                                     train::LearnerOptions(options).memory_format(format));
  };
  auto plain = make(nn::MemoryFormat::Contiguous);
  auto nhwc = make(nn::MemoryFormat::ChannelsLast);
  auto automatic = make(nn::MemoryFormat::Auto);  // on the CPU: contiguous
  int64_t convs = 0;
  for (const auto& p : nhwc->model().parameters()) {
    if (p.dim() != 4) continue;
    ++convs;
    CHECK(p.is_contiguous(torch::MemoryFormat::ChannelsLast));
    // (A 1×1 or one-input-channel weight is both; every other one is NHWC only.)
    if (p.size(1) > 1 && p.size(2) > 1) CHECK_FALSE(p.is_contiguous());
  }
  CHECK(convs == 20);  // ResNet-18: stem, 16 block convolutions, 3 shortcut convolutions
  for (const auto& p : automatic->model().parameters()) CHECK(p.is_contiguous());

  // Task 1 on both, then task 2 on the channels-last learner from a checkpoint of task 1 (a
  // fresh learner, other initial weights), which must continue exactly as the original.
  plain->observe(seq.tasks[0]);
  nhwc->observe(seq.tasks[0]);
  checkpoint::Tree saved;
  nhwc->save_state(saved);
  torch::manual_seed(99);
  auto model = std::make_shared<nn::ResNet18Impl>(nn::ResNetStem::Cifar, 4, 1);
  model->to(torch::kDouble);
  train::ContinualLearner resumed(model, regularize::make_regularizers("fromp", {}),
                                  train::LearnerOptions(options).memory_format(nn::MemoryFormat::ChannelsLast));
  resumed.load_state(saved);
  for (auto* l : {plain.get(), nhwc.get(), &resumed}) l->observe(seq.tasks[1]);

  const auto pp = plain->model().parameters(), pn = nhwc->model().parameters(), pr = resumed.model().parameters();
  double diff = 0;
  for (size_t i = 0; i < pp.size(); ++i) {
    diff = std::max(diff, (pp[i] - pn[i]).abs().max().item<double>());
    CHECK(pn[i].equal(pr[i]));
    if (pr[i].dim() == 4) CHECK(pr[i].is_contiguous(torch::MemoryFormat::ChannelsLast));
  }
  // The layouts sum in other orders (BatchNorm's statistics): float64 rounding only.
  CAPTURE(diff);
  CHECK(diff < 1e-10);
  for (size_t t = 0; t < 2; ++t) CHECK(plain->memory()[t].indices.equal(nhwc->memory()[t].indices));
  const auto& kp = dynamic_cast<const regularize::FROMP&>(*plain->regularizers().front()).kernel_inverses();
  const auto& kn = dynamic_cast<const regularize::FROMP&>(*nhwc->regularizers().front()).kernel_inverses();
  REQUIRE(kp.size() == 2);
  REQUIRE(kn.size() == 2);
  for (size_t t = 0; t < 2; ++t) CHECK(torch::allclose(kn[t], kp[t], 1e-8, 1e-10));
  const auto a = plain->predict(x.slice(0, 0, 5), seq.tasks[0]);
  const auto b = nhwc->predict(x.slice(0, 0, 5), seq.tasks[0]);
  CHECK(torch::allclose(b.probs, a.probs, 1e-9, 1e-12));
  CHECK(torch::allclose(b.variance, a.variance, 1e-8, 1e-14));

  CHECK(nn::parse_memory_format("channels-last") == nn::MemoryFormat::ChannelsLast);
  CHECK(nn::to_string(nn::parse_memory_format("auto")) == "auto");
  CHECK_THROWS_AS(nn::parse_memory_format("nhwc"), UsageError);
  CHECK(nn::resolve_memory_format(nn::MemoryFormat::Auto, plain->model(), /*cuda=*/true) == nn::MemoryFormat::ChannelsLast);
  nn::MLPImpl mlp(std::vector<int64_t>{2, 3});
  CHECK(nn::resolve_memory_format(nn::MemoryFormat::Auto, mlp, /*cuda=*/true) == nn::MemoryFormat::Contiguous);
}

TEST_CASE("channels-last LeNet-5 (float64): IVON steps and pooled-convolution kernels as contiguous", "[train]") {
  // IVON with noise drawn in logical order (a noise source), so both layouts sample the same
  // weights; then FROMP's kernels through the fused conv+pool per-example gradients.
  auto make = [](bool channels_last) {
    torch::manual_seed(11);
    auto model = std::make_shared<nn::LeNet5Impl>(5);
    model->to(torch::kDouble);
    if (channels_last) nn::to_channels_last(*model);
    return model;
  };
  auto plain = make(false), nhwc = make(true);
  torch::manual_seed(12);
  const auto x = torch::randn({6, 1, 28, 28}, torch::kDouble);
  const auto y = torch::arange(6, torch::kLong) % 5;
  auto noise = [](size_t group, size_t param, const torch::Tensor& like) {
    auto gen = at::detail::createCPUGenerator(1000 * group + param);
    return torch::randn(like.sizes(), gen, like.options());
  };
  auto run = [&](nn::LeNet5Impl& model) {
    optim::IVON ivon(model.parameters(), optim::IVONOptions(0.01, 6000.0).noise(noise));
    for (int step = 0; step < 3; ++step) {
      {
        auto sample = ivon.sampled_params(true);
        torch::nn::functional::cross_entropy(model.forward(x), y).backward();
      }
      ivon.step();
    }
  };
  run(*plain);
  run(*nhwc);
  const auto pp = plain->parameters(), pn = nhwc->parameters();
  double diff = 0;
  for (size_t i = 0; i < pp.size(); ++i) {
    if (pn[i].dim() == 4 && pn[i].size(1) > 1) CHECK_FALSE(pn[i].is_contiguous());  // still NHWC
    diff = std::max(diff, (pp[i] - pn[i]).abs().max().item<double>());
  }
  CAPTURE(diff);
  CHECK(diff < 1e-12);
  double moved = 0;  // the steps did change the weights
  const auto initial = make(false)->parameters();
  for (size_t i = 0; i < pp.size(); ++i) moved = std::max(moved, (pp[i] - initial[i]).abs().max().item<double>());
  CHECK(moved > 1e-3);
  std::vector<torch::Tensor> variances;
  for (const auto& p : pp) variances.push_back(torch::full_like(p, 1e-2, torch::MemoryFormat::Contiguous));
  const std::vector<int64_t> cols{0, 2, 3};
  const auto kp = linearize::fromp_kernels(*plain, x, cols, variances);
  const auto kn = linearize::fromp_kernels(*nhwc, x, cols, variances);
  CHECK(kp.abs().max().item<double>() > 0);
  CHECK(((kn - kp).abs().max() / kp.abs().max()).item<double>() < 1e-12);
}
