#include "kprior/nn/resnet.h"

#include <torch/torch.h>

#include <string>

namespace kprior::nn {

namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  torch::nn::Conv2d c(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
  // He et al. (ICCV 2015) initialisation for ReLU networks, fan-out mode as in torchvision's
  // ResNet (the default LibTorch init is scaled for fan-in with a = sqrt(5)).
  torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
  return c;
}

// `blocks` BasicBlocks; the first changes stride/width, the rest keep them.
torch::nn::Sequential stage(int64_t in, int64_t out, int64_t stride, int blocks) {
  torch::nn::Sequential s;
  s->push_back(BasicBlock(in, out, stride));
  for (int b = 1; b < blocks; ++b) s->push_back(BasicBlock(out, out, 1));
  return s;
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride) {
  conv1_ = register_module("conv1", conv(in_channels, out_channels, 3, stride, 1));
  bn1_ = register_module("bn1", torch::nn::BatchNorm2d(out_channels));
  conv2_ = register_module("conv2", conv(out_channels, out_channels, 3, 1, 1));
  bn2_ = register_module("bn2", torch::nn::BatchNorm2d(out_channels));
  if (stride != 1 || in_channels != out_channels) {
    down_conv_ = conv(in_channels, out_channels, 1, stride, 0);
    down_bn_ = torch::nn::BatchNorm2d(out_channels);
    downsample_ = register_module("downsample", torch::nn::Sequential(down_conv_, down_bn_));
  }
}

torch::Tensor BasicBlockImpl::forward_taped(const torch::Tensor& x, LayerTape* tape) {
  auto h = torch::relu(tape_batchnorm2d(bn1_, tape_conv2d(conv1_, x, tape), tape));
  h = tape_batchnorm2d(bn2_, tape_conv2d(conv2_, h, tape), tape);
  const auto shortcut = downsample_ ? tape_batchnorm2d(down_bn_, tape_conv2d(down_conv_, x, tape), tape) : x;
  if (tape != nullptr) {
    h = h + shortcut;  // bn2's output is on the tape: not modified in place
  } else {
    h += shortcut;
  }
  return torch::relu(h);
}

ResNet18Impl::ResNet18Impl(ResNetStem stem, int64_t num_classes, int64_t in_channels)
    : stem_(stem) {
  conv1_ = register_module("conv1", stem == ResNetStem::ImageNet ? conv(in_channels, 64, 7, 2, 3)
                                                                 : conv(in_channels, 64, 3, 1, 1));
  bn1_ = register_module("bn1", torch::nn::BatchNorm2d(64));
  layer1_ = register_module("layer1", stage(64, 64, 1, 2));
  layer2_ = register_module("layer2", stage(64, 128, 2, 2));
  layer3_ = register_module("layer3", stage(128, 256, 2, 2));
  layer4_ = register_module("layer4", stage(256, 512, 2, 2));
  fc_ = register_module("fc", torch::nn::Linear(512, num_classes));
}

torch::Tensor ResNet18Impl::forward_taped(const torch::Tensor& x, LayerTape* tape) {
  auto h = torch::relu(tape_batchnorm2d(bn1_, tape_conv2d(conv1_, x, tape), tape));
  if (stem_ == ResNetStem::ImageNet) h = torch::max_pool2d(h, 3, 2, 1);
  for (auto* stage : {&layer1_, &layer2_, &layer3_, &layer4_}) {
    for (const auto& block : (*stage)->children()) h = block->as<BasicBlockImpl>()->forward_taped(h, tape);
  }
  // Global average pooling to [N, 512] (any input size works).
  return tape_linear(fc_, torch::adaptive_avg_pool2d(h, {1, 1}).flatten(1), tape);
}

}  // namespace kprior::nn
