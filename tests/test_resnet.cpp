// ResNet-18 against published facts: torchvision's parameter count for the ImageNet network,
// the output shapes of both stems, and that in eval mode (BatchNorm on running statistics) an
// example's logits do not depend on the rest of the batch.
#include <torch/torch.h>

#include "catch.h"
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
