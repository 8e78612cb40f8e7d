#pragma once
// CifarNet, the network of the published split-CIFAR experiments (Zenke et al., ICML 2017;
// FROMP, Pan et al., NeurIPS 2020): conv 32@3x3 (pad 1), conv 32@3x3, pool, dropout 0.25,
// conv 64@3x3 (pad 1), conv 64@3x3, pool, dropout 0.25, fc 512, dropout 0.5, fc outputs
// (all heads side by side), ReLU. Dropout is active in train mode only.
#include "kprior/nn/layer_tape.h"

namespace kprior::nn {

class CifarNetImpl : public TapedModule {
 public:
  explicit CifarNetImpl(int64_t outputs = 60, int64_t in_channels = 3);
  torch::Tensor forward_taped(const torch::Tensor& x, LayerTape* tape) override;

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr}, conv4_{nullptr};
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(CifarNet);

}  // namespace kprior::nn
