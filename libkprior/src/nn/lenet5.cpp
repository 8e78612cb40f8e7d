#include "kprior/nn/lenet5.h"

#include <torch/torch.h>

namespace kprior::nn {

LeNet5Impl::LeNet5Impl(int64_t outputs, int64_t in_channels, Activation activation, Pooling pooling)
    : activation_(activation), pooling_(pooling) {
  conv1_ = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, 6, 5).padding(2)));
  conv2_ = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 16, 5)));
  fc1_ = register_module("fc1", torch::nn::Linear(16 * 5 * 5, 120));
  fc2_ = register_module("fc2", torch::nn::Linear(120, 84));
  fc3_ = register_module("fc3", torch::nn::Linear(84, outputs));
}

torch::Tensor LeNet5Impl::forward_taped(const torch::Tensor& x, LayerTape* tape) {
  torch::Tensor h;
  if (pooling_ == Pooling::Max) {
    // Each convolution is taped with its activation and pooling (signals at the pooled maps);
    // the first one's pooled map feeds only the second.
    h = tape_conv2d_pool(conv1_, x, activation_, 2, tape);
    h = tape_conv2d_pool(conv2_, h, activation_, 2, tape, TapeInput::PreviousOnly);
  } else {
    // Average pooling spreads each pooled value's gradient over its whole window: the
    // convolutions are taped plainly and autograd carries the signals through the pooling.
    h = torch::avg_pool2d(activate(tape_conv2d(conv1_, x, tape), activation_), 2);
    h = torch::avg_pool2d(activate(tape_conv2d(conv2_, h, tape), activation_), 2);
  }
  h = activate(tape_linear(fc1_, h.flatten(1), tape), activation_);
  h = activate(tape_linear(fc2_, h, tape), activation_);
  return tape_linear(fc3_, h, tape);
}

}  // namespace kprior::nn
