// The continual learner on a GPU against the same run on the CPU (tag [cuda]: run by
// scripts/gpu-check.sh, not registered with CTest; skipped with a message without CUDA).
// In float64 the two devices differ only by rounding, so FROMP with Adam must give the same
// accuracies, epoch losses, kernel inverses and penalty; a checkpoint written from the GPU
// learner must restore into another GPU learner (checkpoints hold CPU tensors). IVON draws
// its noise differently on the two devices, so its GPU run is checked on its own. bf16
// autocast and channels-last: a float64 oracle of bf16-rounded operands, a channels-last
// ResNet-18 on the GPU against the contiguous one on the CPU, bf16 against fp32.
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cmath>

#include "blobs.h"
#include "catch.h"
#include "dataset_fixtures.h"
#include "temp_dir.h"
#include "kprior/checkpoint/tree.h"
#include "kprior/data/image_folder.h"
#include "kprior/data/image_loader.h"
#include "kprior/linearize/linearize.h"
#include "kprior/nn/lenet5.h"
#include "kprior/nn/memory_format.h"
#include "kprior/nn/mlp.h"
#include "kprior/nn/precision.h"
#include "kprior/nn/resnet.h"
#include "kprior/regularize/factory.h"
#include "kprior/regularize/fromp.h"
#include "kprior/train/continual_learner.h"

using namespace kprior;

namespace {

struct RunResult {
  std::vector<std::vector<double>> accuracy;  // [t][s] task-incremental, s <= t
  std::vector<double> epoch_losses;
  std::vector<torch::Tensor> kernel_inverses;  // on the CPU
  double penalty = 0;
  double restored_penalty = 0;  // the same penalty from a learner restored from a checkpoint
};

std::shared_ptr<nn::MLPImpl> make_model(const torch::Device& device) {
  torch::manual_seed(3);  // the same initial weights on both devices (drawn on the CPU)
  auto model = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{2, 16, 4});
  model->to(torch::kFloat64);
  model->to(device);
  return model;
}

RunResult run_fromp(const torch::Device& device, train::OptimizerKind optimizer) {
  auto seq = data::make_split_sequence("blobs", testing::blobs(40, 1, 0.7, torch::kFloat64), testing::blobs(20, 2, 0.7, torch::kFloat64), {{0, 1}, {2, 3}}, 4);
  for (auto& t : seq.tasks) {
    t.train = t.train.to(device);
    t.test = t.test.to(device);
  }
  const auto options = train::LearnerOptions()
                           .optimizer(optimizer)
                           .lr(optimizer == train::OptimizerKind::Adam ? 1e-2 : 0)
                           .hess_init(optimizer == train::OptimizerKind::IVON ? 100.0 : 1.0)
                           .epochs(4)
                           .batch_size(32)
                           .memory_per_task(8);
  RunResult r;
  train::Callbacks cb;
  cb.on_epoch_end = [&](const train::Progress& p) { r.epoch_losses.push_back(p.mean_loss); };
  auto model = make_model(device);
  train::ContinualLearner learner(model, regularize::make_regularizers("fromp", {}), options, cb);
  const auto result = train::run_sequence(learner, seq);
  for (int64_t t = 0; t < seq.size(); ++t) {
    r.accuracy.emplace_back();
    for (int64_t s = 0; s <= t; ++s) r.accuracy.back().push_back(result.task_incremental.at(t, s));
  }
  const auto* fromp = dynamic_cast<const regularize::FROMP*>(learner.regularizers().at(0).get());
  REQUIRE(fromp != nullptr);
  for (const auto& k : fromp->kernel_inverses()) {
    CHECK(k.device().type() == device.type());  // cuda:0 vs cuda: compare the kind
    r.kernel_inverses.push_back(k.cpu());
  }
  // At the learner's own weights the penalty is 0 (the soft targets were just refreshed), so
  // it is evaluated at the initial weights, where every memory term is non-trivial.
  const int64_t n = seq.tasks.back().train.size();
  auto probe = make_model(device);
  r.penalty = learner.regularizers()[0]->penalty(*probe, n).item<double>();

  // Save and restore into a fresh learner on the same device.
  checkpoint::Tree tree;
  learner.save_state(tree);
  auto model2 = make_model(device);
  train::ContinualLearner restored(model2, regularize::make_regularizers("fromp", {}), options);
  restored.load_state(tree);
  CHECK(restored.memory().front().inputs.device().type() == device.type());
  r.restored_penalty = restored.regularizers()[0]->penalty(*probe, n).item<double>();
  return r;
}

double rel_diff(double a, double b) { return std::abs(a - b) / std::max(1e-300, std::abs(b)); }

}  // namespace

TEST_CASE("FROMP with Adam on CUDA equals the same run on the CPU (float64)", "[cuda]") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: skipped");
    return;
  }
  const auto cpu = run_fromp(torch::kCPU, train::OptimizerKind::Adam);
  const auto gpu = run_fromp(torch::kCUDA, train::OptimizerKind::Adam);
  REQUIRE(gpu.accuracy.size() == cpu.accuracy.size());
  for (size_t t = 0; t < cpu.accuracy.size(); ++t) {
    for (size_t s = 0; s <= t; ++s) {
      CAPTURE(t, s);
      // Rounding could flip an example on the decision boundary; one in 40 is the tolerance.
      CHECK(std::abs(gpu.accuracy[t][s] - cpu.accuracy[t][s]) <= 1.0 / 40 + 1e-12);
    }
  }
  CHECK(cpu.accuracy[1][0] > 0.8);  // FROMP kept task 0 (chance is 0.5)
  REQUIRE(gpu.epoch_losses.size() == cpu.epoch_losses.size());
  for (size_t e = 0; e < cpu.epoch_losses.size(); ++e) {
    CAPTURE(e, gpu.epoch_losses[e], cpu.epoch_losses[e]);
    CHECK(rel_diff(gpu.epoch_losses[e], cpu.epoch_losses[e]) < 1e-8);
  }
  REQUIRE(gpu.kernel_inverses.size() == cpu.kernel_inverses.size());
  for (size_t k = 0; k < cpu.kernel_inverses.size(); ++k) {
    CHECK(torch::allclose(gpu.kernel_inverses[k], cpu.kernel_inverses[k], 1e-6, 1e-8));
  }
  CAPTURE(gpu.penalty, cpu.penalty);
  CHECK(cpu.penalty > 0);
  CHECK(rel_diff(gpu.penalty, cpu.penalty) < 1e-6);
  CHECK(rel_diff(gpu.restored_penalty, gpu.penalty) < 1e-12);
  CHECK(cpu.restored_penalty == cpu.penalty);
}

TEST_CASE("FROMP with IVON runs on CUDA", "[cuda]") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: skipped");
    return;
  }
  const auto gpu = run_fromp(torch::kCUDA, train::OptimizerKind::IVON);
  for (double loss : gpu.epoch_losses) CHECK(std::isfinite(loss));
  CHECK(gpu.accuracy[0][0] > 0.8);
  CHECK(gpu.accuracy[1][1] > 0.8);
  CHECK(std::isfinite(gpu.penalty));
  CHECK(rel_diff(gpu.restored_penalty, gpu.penalty) < 1e-12);
}

TEST_CASE("a CUDA learner given tasks held on the CPU: the boundary and predict move the data", "[cuda]") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: skipped");
    return;
  }
  const auto seq = data::make_split_sequence("blobs", testing::blobs(40, 1, 0.7, torch::kFloat64),
                                             testing::blobs(20, 2, 0.7, torch::kFloat64), {{0, 1}, {2, 3}}, 4);
  auto model = make_model(torch::kCUDA);
  train::ContinualLearner learner(model, regularize::make_regularizers("fromp", {}),
                                  train::LearnerOptions().optimizer(train::OptimizerKind::Adam).lr(1e-2).epochs(3)
                                      .memory_per_task(8));
  for (const auto& t : seq.tasks) learner.observe(t);  // tasks stay on the CPU
  CHECK(learner.memory().back().inputs.is_cuda());
  const auto answer = learner.predict(seq.tasks[0].test.inputs, seq.tasks[0]);
  CHECK(answer.probs.is_cuda());
  CHECK(torch::isfinite(answer.variance).all().item<bool>());
  CHECK(learner.evaluate(seq.tasks[0], seq.tasks[0].classes).task_incremental > 0.8);
}

TEST_CASE("FROMP kernels of a CNN on CUDA, one class row per pass, equal the CPU's (float64)", "[cuda]") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: skipped");
    return;
  }
  // The path a 100-way ImageNet head takes: rows formed one backward pass at a time, the
  // convolutions' per-example gradients in chunks of examples (one batched call on a GPU).
  torch::manual_seed(5);
  auto cpu_model = std::make_shared<nn::LeNet5Impl>(7);
  cpu_model->to(torch::kFloat64);
  auto gpu_model = std::make_shared<nn::LeNet5Impl>(7);
  gpu_model->to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    const auto src = cpu_model->parameters();
    const auto dst = gpu_model->parameters();
    for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  }
  gpu_model->to(torch::kCUDA);
  std::vector<torch::Tensor> var_cpu, var_gpu;
  for (const auto& p : cpu_model->parameters()) {
    var_cpu.push_back(torch::rand_like(p) * 1e-2 + 1e-4);
    var_gpu.push_back(var_cpu.back().to(torch::kCUDA));
  }
  const auto x = torch::randn({6, 1, 28, 28}, torch::kFloat64);
  const std::vector<int64_t> cols{0, 2, 3, 5, 6};
  const auto whole = linearize::fromp_kernels(*cpu_model, x, cols, var_cpu);
  const auto xg = x.to(torch::kCUDA);
  const int64_t one_row = linearize::kernel_floats(*gpu_model, xg, xg.size(0), 1);
  const auto rows = linearize::fromp_kernels(*gpu_model, xg, cols, var_gpu, one_row).cpu();
  REQUIRE(rows.sizes() == whole.sizes());
  CHECK(((rows - whole).abs().max() / whole.abs().max()).item<double>() < 1e-10);
}

namespace {

// ResNet-18 (CIFAR stem, 4 classes, one input channel) on `device` with the given layout,
// FROMP with SGD (no Adam: its first step magnifies last-bit gradient differences) and MPE
// memory, over two tasks of a tiny image sequence; returns the learner.
std::unique_ptr<train::ContinualLearner> resnet_learner(const torch::Device& device, torch::ScalarType dtype,
                                                        nn::MemoryFormat format, nn::Precision precision,
                                                        std::vector<double>* losses) {
  torch::manual_seed(7);  // drawn on the CPU: the same initial weights on both devices
  auto model = std::make_shared<nn::ResNet18Impl>(nn::ResNetStem::Cifar, 4, 1);
  model->to(dtype);
  model->to(device);
  train::Callbacks cb;
  if (losses != nullptr) cb.on_epoch_end = [losses](const train::Progress& p) { losses->push_back(p.mean_loss); };
  return std::make_unique<train::ContinualLearner>(
      model, regularize::make_regularizers("fromp", {}),
      train::LearnerOptions().optimizer(train::OptimizerKind::SGD).lr(0.05).epochs(2).batch_size(8)
          .memory_per_task(4).selection(memory::Selection::MPE).memory_format(format).precision(precision),
      cb);
}

data::TaskSequence tiny_images(const torch::Device& device, torch::ScalarType dtype) {
  torch::manual_seed(5);
  const auto y = torch::arange(16, torch::kLong) % 4;
  // Class-dependent mean images plus noise: learnable, so the loss moves.
  const auto means = torch::randn({4, 1, 8, 8}, dtype);
  const auto x = means.index_select(0, y) + 0.5 * torch::randn({16, 1, 8, 8}, dtype);
  auto seq = data::make_split_sequence("tiny", {x, y}, {x, y}, data::consecutive_groups(4, 2), 4);
  for (auto& t : seq.tasks) {
    t.train = t.train.to(device);
    t.test = t.test.to(device);
  }
  return seq;
}

}  // namespace

TEST_CASE("bf16 autocast and channels-last on CUDA", "[cuda]") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: skipped");
    return;
  }
  const torch::Device cuda(torch::kCUDA);
  SECTION("a Linear layer under bf16 autocast: float64 oracle of bf16-rounded operands") {
    torch::manual_seed(3);
    auto model = std::make_shared<nn::MLPImpl>(std::vector<int64_t>{24, 7});
    model->to(cuda);
    const auto x = torch::randn({16, 24}).to(cuda);
    const auto params = model->parameters();
    auto r = [](const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kDouble); };
    const auto oracle = r(r(x).matmul(r(params[0]).t()) + r(params[1]));
    model->set_forward_precision(nn::Precision::BFloat16);
    const auto y = model->forward(x).detach();
    CHECK(y.scalar_type() == torch::kFloat);
    CHECK(y.to(torch::kBFloat16).to(torch::kFloat).equal(y));  // computed in bf16
    const auto spacing = torch::exp2(torch::floor(torch::log2(oracle.abs().clamp_min(1e-30))) - 7);
    // Two bf16 steps: cuBLAS may reduce partial sums in bf16 (PyTorch's default allows it).
    CHECK(((y.to(torch::kDouble) - oracle).abs() / spacing).max().item<double>() <= 2.0);
  }
  SECTION("a channels-last ResNet-18 on CUDA learns as the contiguous one on the CPU (float64)") {
    // cuDNN runs float64 convolutions in NCHW whatever the weights' layout, so this checks
    // that every consumer reads channels-last weights right on the GPU; the next section
    // runs real NHWC activations (fp32).
    auto on_cpu = resnet_learner(torch::kCPU, torch::kDouble, nn::MemoryFormat::Contiguous, nn::Precision::Float32, nullptr);
    auto on_gpu = resnet_learner(cuda, torch::kDouble, nn::MemoryFormat::ChannelsLast, nn::Precision::Float32, nullptr);
    for (const auto& p : on_gpu->model().parameters()) {
      if (p.dim() == 4) CHECK(p.is_contiguous(torch::MemoryFormat::ChannelsLast));
    }
    const auto seq_cpu = tiny_images(torch::kCPU, torch::kDouble);
    const auto seq_gpu = tiny_images(cuda, torch::kDouble);
    for (size_t t = 0; t < 2; ++t) {
      on_cpu->observe(seq_cpu.tasks[t]);
      on_gpu->observe(seq_gpu.tasks[t]);
    }
    const auto pc = on_cpu->model().parameters(), pg = on_gpu->model().parameters();
    double diff = 0;
    for (size_t i = 0; i < pc.size(); ++i) diff = std::max(diff, (pg[i].cpu() - pc[i]).abs().max().item<double>());
    CAPTURE(diff);
    CHECK(diff < 1e-9);
    const auto& kc = dynamic_cast<const regularize::FROMP&>(*on_cpu->regularizers().front()).kernel_inverses();
    const auto& kg = dynamic_cast<const regularize::FROMP&>(*on_gpu->regularizers().front()).kernel_inverses();
    REQUIRE(kg.size() == kc.size());
    for (size_t t = 0; t < kc.size(); ++t) CHECK(torch::allclose(kg[t].cpu(), kc[t], 1e-6, 1e-8));
  }
  SECTION("fp32 ResNet-18 on CUDA: channels-last (NHWC activations) learns as contiguous") {
    // No TF32, so both layouts compute in fp32 and differ only by summation order.
    const bool tf32 = at::globalContext().allowTF32CuDNN();
    at::globalContext().setAllowTF32CuDNN(false);
    std::vector<double> loss_nchw, loss_nhwc;
    auto nchw = resnet_learner(cuda, torch::kFloat, nn::MemoryFormat::Contiguous, nn::Precision::Float32, &loss_nchw);
    auto nhwc = resnet_learner(cuda, torch::kFloat, nn::MemoryFormat::ChannelsLast, nn::Precision::Float32, &loss_nhwc);
    const auto seq = tiny_images(cuda, torch::kFloat);
    nchw->observe(seq.tasks[0]);
    nhwc->observe(seq.tasks[0]);
    at::globalContext().setAllowTF32CuDNN(tf32);
    REQUIRE(loss_nhwc.size() == loss_nchw.size());
    for (size_t e = 0; e < loss_nchw.size(); ++e) CHECK(std::abs(loss_nhwc[e] - loss_nchw[e]) <= 1e-4 * loss_nchw[e]);
    const auto a = nchw->model().parameters(), b = nhwc->model().parameters();
    double diff = 0;
    for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, (a[i] - b[i]).abs().max().item<double>());
    CAPTURE(diff);
    CHECK(diff < 1e-4);
  }
  SECTION("ResNet-18 in bf16 with the default layout on CUDA (channels-last) follows the fp32 run") {
    std::vector<double> loss32, loss16;
    auto fp32 = resnet_learner(cuda, torch::kFloat, nn::MemoryFormat::Auto, nn::Precision::Float32, &loss32);
    auto bf16 = resnet_learner(cuda, torch::kFloat, nn::MemoryFormat::Auto, nn::Precision::BFloat16, &loss16);
    for (const auto& p : bf16->model().parameters()) {
      CHECK(p.scalar_type() == torch::kFloat);
      if (p.dim() == 4) CHECK(p.is_contiguous(torch::MemoryFormat::ChannelsLast));
    }
    const auto seq = tiny_images(cuda, torch::kFloat);
    const auto r32 = train::run_sequence(*fp32, seq);
    const auto r16 = train::run_sequence(*bf16, seq);
    REQUIRE(loss16.size() == loss32.size());
    // The first epoch starts from the same weights on the same batches: bf16's forward error
    // (~0.4% per op) moves its mean loss by a few percent at most.
    CAPTURE(loss16, loss32);
    CHECK(loss16[0] != loss32[0]);  // bf16 took effect
    CHECK(std::abs(loss16[0] - loss32[0]) <= 0.05 * loss32[0]);
    for (double l : loss16) CHECK(std::isfinite(l));
    CHECK(std::isfinite(r16.nll));
    const auto pred = bf16->predict(seq.tasks[0].test.inputs, seq.tasks[0]);
    CHECK_FALSE(pred.probs.to(torch::kBFloat16).to(torch::kFloat).equal(pred.probs));  // fp32 evaluation
    CHECK(torch::isfinite(pred.variance).all().item<bool>());
  }
}

TEST_CASE("streamed JPEG batches come in page-locked memory and equal the unpinned ones", "[cuda]") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: skipped");
    return;
  }
  kprior::testing::TempDir tmp;
  kprior::testing::write_jpeg_tree(tmp.path().string(), 3, 4, 1, false, 16);
  const auto list = data::scan_image_folder((tmp.path() / "train").string());
  data::ImageTransform transform;
  transform.size = 32;
  transform.augment = true;
  data::ImageBatchLoader plain(list, transform, 4, true, 3), pinned(list, transform, 4, true, 3);
  pinned.pin_batches();
  plain.set_epoch(1);
  pinned.set_epoch(1);
  for (int64_t b = 0; b < plain.num_batches(); ++b) {
    const auto a = plain.batch(b), p = pinned.batch(b);
    CHECK(p.inputs.is_pinned());
    CHECK_FALSE(a.inputs.is_pinned());
    CHECK(p.inputs.equal(a.inputs));  // same decoding and augmentation, other memory
    CHECK(p.targets.equal(a.targets));
    CHECK(p.inputs.to(torch::kCUDA, /*non_blocking=*/true).cpu().equal(a.inputs));
  }
}
