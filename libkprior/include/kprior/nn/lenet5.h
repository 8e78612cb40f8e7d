#pragma once
// LeNet-5 (LeCun et al., Proc. IEEE 1998) for 28x28 inputs: conv 6@5x5 (padding 2), pool,
// conv 16@5x5, pool, fc 120, fc 84, fc outputs — with ReLU or tanh, and 2x2 max or average
// pooling. The published class-removal experiment (Nickl et al., NeurIPS 2023) uses tanh with
// average pooling, as LeCun's original (its conv 120@5x5 on the 5x5 map is our fc 120).
#include "kprior/nn/layer_tape.h"
#include "kprior/nn/mlp.h"

namespace kprior::nn {

/// How LeNet-5 pools its convolutions' activations (2x2, stride 2).
enum class Pooling { Max, Average };

class LeNet5Impl : public TapedModule {
 public:
  explicit LeNet5Impl(int64_t outputs = 10, int64_t in_channels = 1,
                      Activation activation = Activation::ReLU, Pooling pooling = Pooling::Max);
  torch::Tensor forward_taped(const torch::Tensor& x, LayerTape* tape) override;

 private:
  Activation activation_;
  Pooling pooling_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr}, fc3_{nullptr};
};
TORCH_MODULE(LeNet5);

}  // namespace kprior::nn
