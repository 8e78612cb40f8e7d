#include "kprior/nn/cifarnet.h"

#include <torch/torch.h>

namespace kprior::nn {

CifarNetImpl::CifarNetImpl(int64_t outputs, int64_t in_channels) {
  using torch::nn::Conv2dOptions;
  conv1_ = register_module("conv1", torch::nn::Conv2d(Conv2dOptions(in_channels, 32, 3).padding(1)));
  conv2_ = register_module("conv2", torch::nn::Conv2d(Conv2dOptions(32, 32, 3)));
  conv3_ = register_module("conv3", torch::nn::Conv2d(Conv2dOptions(32, 64, 3).padding(1)));
  conv4_ = register_module("conv4", torch::nn::Conv2d(Conv2dOptions(64, 64, 3)));
  fc1_ = register_module("fc1", torch::nn::Linear(64 * 6 * 6, 512));
  fc2_ = register_module("fc2", torch::nn::Linear(512, outputs));
}

torch::Tensor CifarNetImpl::forward_taped(const torch::Tensor& x, LayerTape* tape) {
  const bool train = is_training();
  auto h = torch::relu(tape_conv2d(conv1_, x, tape));
  h = tape_conv2d_pool(conv2_, h, Activation::ReLU, 2, tape);
  h = torch::dropout(h, 0.25, train);
  h = torch::relu(tape_conv2d(conv3_, h, tape));
  h = tape_conv2d_pool(conv4_, h, Activation::ReLU, 2, tape);
  h = torch::dropout(h, 0.25, train);
  h = torch::dropout(torch::relu(tape_linear(fc1_, h.flatten(1), tape)), 0.5, train);
  return tape_linear(fc2_, h, tape);
}

}  // namespace kprior::nn
