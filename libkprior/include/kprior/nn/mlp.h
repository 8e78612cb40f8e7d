#pragma once
// A multilayer perceptron: input flattened, hidden Linear layers with ReLU or tanh, a linear
// output layer. Layers are created one statement at a time so their initialisation order
// (and thus the weights for a given seed) is fixed.
#include "kprior/nn/activation.h"
#include "kprior/nn/layer_tape.h"

#include <string>
#include <vector>

namespace kprior::nn {

class MLPImpl : public TapedModule {
 public:
  /// `widths` = {inputs, hidden..., outputs}, at least two entries, all > 0.
  MLPImpl(std::vector<int64_t> widths, Activation activation = Activation::ReLU);
  /// Logits [N, outputs] for inputs [N, ...] (flattened to [N, inputs]).
  torch::Tensor forward_taped(const torch::Tensor& x, LayerTape* tape) override;
  const std::vector<int64_t>& widths() const { return widths_; }

 private:
  std::vector<int64_t> widths_;
  Activation activation_;
  std::vector<torch::nn::Linear> layers_;
};

TORCH_MODULE(MLP);

}  // namespace kprior::nn
