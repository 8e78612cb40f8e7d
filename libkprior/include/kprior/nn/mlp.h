#pragma once
// A multilayer perceptron: input flattened, hidden Linear layers with ReLU or tanh, a linear
// output layer. Layers are created one statement at a time so their initialisation order
// (and thus the weights for a given seed) is fixed.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include <string>
#include <vector>

namespace kprior::nn {

enum class Activation { ReLU, Tanh };

/// Parses "relu" or "tanh" (throws kprior::UsageError otherwise).
Activation parse_activation(const std::string& name);

class MLPImpl : public torch::nn::Module {
 public:
  /// `widths` = {inputs, hidden..., outputs}, at least two entries, all > 0.
  MLPImpl(std::vector<int64_t> widths, Activation activation = Activation::ReLU);
  /// Logits [N, outputs] for inputs [N, ...] (flattened to [N, inputs]).
  torch::Tensor forward(const torch::Tensor& x);
  const std::vector<int64_t>& widths() const { return widths_; }

 private:
  std::vector<int64_t> widths_;
  Activation activation_;
  std::vector<torch::nn::Linear> layers_;
};
TORCH_MODULE(MLP);

}  // namespace kprior::nn
