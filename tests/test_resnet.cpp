// ResNet-18 against published facts: torchvision's parameter count for the ImageNet network,
// the output shapes of both stems, and that in eval mode (BatchNorm on running statistics) an
// example's logits do not depend on the rest of the batch. Then ResNet-18 through the layer
// tape: eval mode only, the linearization's mode handling, FROMP's penalty and a FROMP run.
#include <torch/torch.h>

#include "catch.h"
#include "kprior/nn/cifarnet.h"
#include "kprior/nn/resnet.h"

using kprior::nn::ResNet18;
using kprior::nn::ResNetStem;

namespace {

int64_t count_parameters(torch::nn::Module& model) {
  int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  return n;
}

}  // namespace

TEST_CASE("ResNet-18 (ImageNet stem, 1000 classes) has torchvision's 11,689,512 parameters",
          "[nn]") {
  ResNet18 model(ResNetStem::ImageNet, 1000);
  CHECK(count_parameters(*model) == 11689512);
  // 20 convolutions (17 3x3/7x7 + 3 projections), 20 BatchNorms (weight, bias), fc (2).
  CHECK(model->parameters().size() == 20 + 2 * 20 + 2);
  for (const auto& item : model->named_parameters()) {
    const auto& name = item.key();
    if (name.find("conv") != std::string::npos || name.find("downsample.0") != std::string::npos) {
      CAPTURE(name);
      CHECK(item.value().dim() == 4);  // convolutions carry no bias: BatchNorm follows each
    }
  }
}

TEST_CASE("ResNet-18 output shapes for both stems", "[nn]") {
  torch::manual_seed(0);
  SECTION("ImageNet stem: 64x64 input, 1000 logits") {
    ResNet18 model(ResNetStem::ImageNet, 1000);
    const auto out = model->forward(torch::randn({2, 3, 64, 64}));
    CHECK(out.sizes() == torch::IntArrayRef({2, 1000}));
    CHECK(torch::isfinite(out).all().item<bool>());
  }
  SECTION("CIFAR stem: 32x32 input, 10 logits") {
    ResNet18 model(ResNetStem::Cifar, 10);
    const auto out = model->forward(torch::randn({2, 3, 32, 32}));
    CHECK(out.sizes() == torch::IntArrayRef({2, 10}));
    // The CIFAR stem differs from the ImageNet one only in conv1 (3x3 instead of 7x7).
    ResNet18 imagenet(ResNetStem::ImageNet, 10);
    CHECK(count_parameters(*imagenet) - count_parameters(*model) == 64 * 3 * (7 * 7 - 3 * 3));
  }
  SECTION("one input channel") {
    ResNet18 model(ResNetStem::Cifar, 5, /*in_channels=*/1);
    CHECK(model->forward(torch::randn({1, 1, 28, 28})).sizes() == torch::IntArrayRef({1, 5}));
  }
}

TEST_CASE("ResNet-18 in eval mode: each example's logits are independent of the batch", "[nn]") {
  torch::manual_seed(1);
  ResNet18 model(ResNetStem::Cifar, 10);
  // A few train-mode batches so the running statistics are not the trivial (0, 1).
  {
    torch::NoGradGuard no_grad;
    for (int i = 0; i < 2; ++i) model->forward(torch::randn({4, 3, 32, 32}) * 2 + 0.5);
  }
  model->eval();
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({3, 3, 32, 32});
  const auto batch = model->forward(x);
  for (int64_t i = 0; i < x.size(0); ++i) {
    const auto alone = model->forward(x.narrow(0, i, 1));
    CAPTURE(i, (alone - batch.narrow(0, i, 1)).abs().max().item<double>());
    CHECK(torch::allclose(alone, batch.narrow(0, i, 1), 1e-4, 1e-5));
  }
}

// ---- ResNet-18 through the layer tape ------------------------------------------------------

#include <set>

#include "kprior/core/error.h"
#include "kprior/data/task_sequence.h"
#include "kprior/linearize/linearize.h"
#include "kprior/memory/memory_store.h"
#include "kprior/regularize/factory.h"
#include "kprior/regularize/fromp.h"
#include "kprior/train/continual_learner.h"

using namespace kprior;

namespace {

// A few train-mode forwards so BatchNorm's running statistics are not the trivial (0, 1).
void warm_running_statistics(nn::TapedModule& model, const std::vector<int64_t>& shape) {
  torch::NoGradGuard no_grad;
  model.train();
  for (int i = 0; i < 3; ++i) model.forward(torch::randn(shape) * 2 + 0.5);
}

bool all_batchnorms_training(torch::nn::Module& model, bool training) {
  bool ok = true;
  for (const auto& m : model.modules(/*include_self=*/false)) {
    if (dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.get()) != nullptr) ok = ok && m->is_training() == training;
  }
  return ok;
}

// A two-class task on `inputs` (alternating labels) learned by `model`: its boundary in eval
// mode selects 4 memorable points (Tr Λ) into `memories` and sets up `fromp`'s kernels with
// all variances 1e-3.
void fromp_boundary(nn::TapedModule& model, const torch::Tensor& inputs, std::vector<memory::TaskMemory>& memories,
                    regularize::FROMP& fromp) {
  model.eval();
  data::Task task;
  task.id = 0;
  task.classes = {0, 1};
  task.train.inputs = inputs;
  task.train.targets = torch::arange(inputs.size(0), torch::kLong) % 2;
  memories = {memory::select_memory(model, task, 4, memory::Selection::LambdaTrace, 0)};
  std::vector<torch::Tensor> variances;
  for (const auto& p : model.parameters()) variances.push_back(torch::full_like(p, 1e-3));
  fromp.end_task({model, task, memories, variances, {}});
}

}  // namespace

TEST_CASE("ResNet-18 on the tape: eval mode only, every parameter taped, forward unchanged", "[nn]") {
  torch::manual_seed(2);
  ResNet18 model(ResNetStem::Cifar, 3, /*in_channels=*/1);
  warm_running_statistics(*model, {4, 1, 8, 8});
  const auto x = torch::randn({2, 1, 8, 8});
  nn::LayerTape tape;
  // Train mode: BatchNorm normalises by the batch, which couples the examples.
  model->train();
  CHECK_THROWS_WITH(model->forward_taped(x, &tape), Catch::Matchers::Contains("BatchNorm2d in train mode"));
  model->eval();
  tape.clear();
  torch::NoGradGuard no_grad;
  const auto taped = model->forward_taped(x, &tape);
  // 20 convolutions, 20 BatchNorms, fc; the tape's parameters are all 62, each once.
  REQUIRE(tape.entries().size() == 41);
  int64_t bn = 0;
  std::set<const void*> taped_params;
  for (const auto& e : tape.entries()) {
    if (e.kind == nn::LayerKind::BatchNorm2d) ++bn;
    taped_params.insert(e.weight.unsafeGetTensorImpl());
    if (e.bias.defined()) taped_params.insert(e.bias.unsafeGetTensorImpl());
  }
  CHECK(bn == 20);
  CHECK(taped_params.size() == model->parameters().size());
  // The stem's BatchNorm entry records x̂ = (x − mean) / sqrt(var + eps) of its input.
  const auto& stem_bn = tape.entries()[1];
  REQUIRE(stem_bn.kind == nn::LayerKind::BatchNorm2d);
  CHECK(torch::allclose(stem_bn.output, stem_bn.input * stem_bn.weight.view({1, -1, 1, 1}) +
                                            stem_bn.bias.view({1, -1, 1, 1}), 1e-5, 1e-5));
  // The tape does not change the computation.
  CHECK(torch::equal(taped, model->forward(x)));
}

TEST_CASE("the linearization runs a train-mode ResNet-18 in eval mode and restores its mode", "[linearize]") {
  torch::manual_seed(3);
  ResNet18 model(ResNetStem::Cifar, 3, 1);
  warm_running_statistics(*model, {4, 1, 8, 8});
  const auto mean_before = model->named_buffers()["bn1.running_mean"].clone();
  const auto x = torch::randn({3, 1, 8, 8});
  REQUIRE(model->is_training());
  const auto ggn = linearize::curvature_diagonal(*model, x, {}, {0, 2}, linearize::Curvature::GGN);
  CHECK(model->is_training());
  CHECK(all_batchnorms_training(*model, true));
  // Eval mode: the running statistics were used, not updated.
  CHECK(torch::equal(model->named_buffers()["bn1.running_mean"], mean_before));
  // The same as asking in eval mode.
  model->eval();
  const auto ggn_eval = linearize::curvature_diagonal(*model, x, {}, {0, 2}, linearize::Curvature::GGN);
  for (size_t i = 0; i < ggn.size(); ++i) CHECK(torch::equal(ggn[i], ggn_eval[i]));
}

TEST_CASE("FROMP's penalty evaluates ResNet-18's BatchNorm on running statistics", "[regularize]") {
  torch::manual_seed(4);
  auto model = std::make_shared<nn::ResNet18Impl>(ResNetStem::Cifar, 2, 1);
  warm_running_statistics(*model, {8, 1, 8, 8});
  std::vector<memory::TaskMemory> memories;
  regularize::FROMP fromp;
  fromp_boundary(*model, torch::randn({8, 1, 8, 8}), memories, fromp);
  // In train mode (as during training) at the boundary's parameters: m(w) = m̄, no penalty,
  // and the memory's forward leaves the running statistics and every module's mode alone.
  model->train();
  const auto var_before = model->named_buffers()["layer1.0.bn1.running_var"].clone();
  const auto p = fromp.penalty(*model, 8);
  CHECK(p.item<double>() < 1e-10);
  CHECK(torch::equal(model->named_buffers()["layer1.0.bn1.running_var"], var_before));
  CHECK(all_batchnorms_training(*model, true));
  // BatchNorm in train mode on the memory batch would have given other function values.
  const auto cols = torch::tensor(memories[0].classes);
  const auto train_probs = torch::softmax(model->forward(memories[0].inputs).index_select(1, cols), 1);
  CHECK((train_probs - memories[0].old_probs).abs().max().item<double>() > 1e-4);
}

TEST_CASE("FROMP with ResNet-18 end to end on a tiny split sequence", "[train]") {
  torch::manual_seed(5);
  auto model = std::make_shared<nn::ResNet18Impl>(ResNetStem::Cifar, 4, 1);
  auto x = torch::randn({16, 1, 8, 8});
  auto y = torch::arange(16, torch::kLong) % 4;
  const auto seq = data::make_split_sequence("tiny", {x, y}, {x, y}, data::consecutive_groups(4, 2), 4);
  // Adam: the boundary computes the Laplace posterior from the GGN diagonal; MPE selection
  // needs the logit variances; FROMP its kernels: every linearized path of the learner.
  train::ContinualLearner learner(model, regularize::make_regularizers("fromp", {}),
                                  train::LearnerOptions().optimizer(train::OptimizerKind::Adam).epochs(1).batch_size(8)
                                      .memory_per_task(4).selection(memory::Selection::MPE));
  const auto r = train::run_sequence(learner, seq);
  CHECK(learner.tasks_observed() == 2);
  REQUIRE(learner.memory().size() == 2);
  const auto& fromp = dynamic_cast<const regularize::FROMP&>(*learner.regularizers().front());
  REQUIRE(fromp.kernel_inverses().size() == 2);
  for (const auto& k : fromp.kernel_inverses()) {
    CHECK(k.sizes() == torch::IntArrayRef({2, 4, 4}));
    CHECK(torch::isfinite(k).all().item<bool>());
  }
  CHECK(r.task_incremental.has(1, 0));
  CHECK(std::isfinite(r.nll));
  const auto pred = learner.predict(x.slice(0, 0, 3), seq.tasks[0]);
  CHECK(torch::isfinite(pred.variance).all().item<bool>());
  CHECK(pred.variance.min().item<double>() > 0);
}

TEST_CASE("FROMP's penalty evaluates CifarNet's memory without dropout, as at the boundary", "[regularize]") {
  // The published step runs the memory in eval mode: m(w) is the deterministic network, so at
  // the boundary's parameters m(w) = m̄ exactly, in every step, although the model trains
  // with dropout (0.25, 0.25, 0.5).
  torch::manual_seed(6);
  auto model = std::make_shared<nn::CifarNetImpl>(2, 3);
  std::vector<memory::TaskMemory> memories;
  regularize::FROMP fromp;
  fromp_boundary(*model, torch::randn({8, 3, 32, 32}), memories, fromp);
  model->train();
  for (int step = 0; step < 3; ++step) CHECK(fromp.penalty(*model, 8).item<double>() < 1e-12);
  for (const auto& m : model->modules(/*include_self=*/true)) CHECK(m->is_training());  // restored
  // With dropout on, the memory's function values would move away from m̄ at every step.
  const auto cols = torch::tensor(memories[0].classes);
  const auto dropout_probs = torch::softmax(model->forward(memories[0].inputs).index_select(1, cols), 1);
  CHECK((dropout_probs - memories[0].old_probs).abs().max().item<double>() > 1e-3);
}
