#pragma once
// ResNet-18 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, Table 1):
// BasicBlocks [2, 2, 2, 2] with 64, 128, 256, 512 channels, global average pooling and one
// fully connected layer. Two stems:
//   - ImageNet: conv 7x7 stride 2 (pad 3), BN, ReLU, max-pool 3x3 stride 2 (pad 1), as in the
//     paper and torchvision (11,689,512 parameters with 1000 classes);
//   - CIFAR: conv 3x3 stride 1 (pad 1), BN, ReLU, no max-pool, the usual adaptation for 32x32
//     inputs (e.g. the split-CIFAR ResNet-18 of the continual-learning literature).
// Convolutions have no bias (each is followed by BatchNorm, whose shift makes a bias redundant);
// a block whose stride or width changes projects its shortcut with conv 1x1 + BN (option B).
// A TapedModule: forward_taped records every convolution, BatchNorm and the fc layer, so the
// linearization (Jacobians, kernels, curvature) covers all parameters. BatchNorm couples the
// examples of a batch in train mode, so it is linearized in eval mode only (running statistics;
// a tape in train mode throws UsageError, and the linearization switches to eval mode itself).
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <cstdint>

#include "kprior/nn/layer_tape.h"

namespace kprior::nn {

/// Which first layer a ResNet has (see the file comment).
enum class ResNetStem { ImageNet, Cifar };

/// conv3x3-BN-ReLU-conv3x3-BN plus the (projected) input, then ReLU (He et al. 2016, Fig. 2).
class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x) { return forward_taped(x, nullptr); }
  /// forward(x), recording its convolutions and BatchNorms on `tape` when it is not null.
  torch::Tensor forward_taped(const torch::Tensor& x, LayerTape* tape);

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  torch::nn::Sequential downsample_{nullptr};  // empty (null) when the shortcut is the identity
  // downsample_'s two layers (the same modules; named downsample.0 and downsample.1).
  torch::nn::Conv2d down_conv_{nullptr};
  torch::nn::BatchNorm2d down_bn_{nullptr};
};
TORCH_MODULE(BasicBlock);

/// ResNet-18. forward(x) takes [N, in_channels, H, W] and returns logits [N, num_classes].
/// Submodule names follow torchvision's (conv1, bn1, layer1.0.conv1, ..., fc).
class ResNet18Impl : public TapedModule {
 public:
  explicit ResNet18Impl(ResNetStem stem = ResNetStem::ImageNet, int64_t num_classes = 1000,
                        int64_t in_channels = 3);
  torch::Tensor forward_taped(const torch::Tensor& x, LayerTape* tape) override;

 private:
  ResNetStem stem_;
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr};
  torch::nn::Sequential layer1_{nullptr}, layer2_{nullptr}, layer3_{nullptr}, layer4_{nullptr};
  torch::nn::Linear fc_{nullptr};
};
TORCH_MODULE(ResNet18);

}  // namespace kprior::nn
