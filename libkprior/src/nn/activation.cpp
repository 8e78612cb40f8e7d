#include "kprior/nn/activation.h"

#include <torch/torch.h>

#include "kprior/core/error.h"

namespace kprior::nn {

Activation parse_activation(const std::string& name) {
  if (name == "relu") return Activation::ReLU;
  if (name == "tanh") return Activation::Tanh;
  throw UsageError("activation must be relu or tanh, got '" + name + "'");
}

torch::Tensor activate(const torch::Tensor& x, Activation activation) {
  return activation == Activation::ReLU ? torch::relu(x) : torch::tanh(x);
}

}  // namespace kprior::nn
