#include "kprior/nn/mlp.h"

#include <torch/torch.h>

#include "kprior/core/error.h"

namespace kprior::nn {

MLPImpl::MLPImpl(std::vector<int64_t> widths, Activation activation)
    : widths_(std::move(widths)), activation_(activation) {
  if (widths_.size() < 2) throw UsageError("MLP needs at least an input and an output width");
  for (int64_t w : widths_) {
    if (w <= 0) throw UsageError("MLP widths must be > 0, got " + std::to_string(w));
  }
  for (size_t i = 0; i + 1 < widths_.size(); ++i) {
    layers_.push_back(register_module("fc" + std::to_string(i),
                                      torch::nn::Linear(widths_[i], widths_[i + 1])));
  }
}

torch::Tensor MLPImpl::forward_taped(const torch::Tensor& x, LayerTape* tape) {
  auto h = x.flatten(1);
  for (size_t i = 0; i < layers_.size(); ++i) {
    h = tape_linear(layers_[i], h, tape);
    if (i + 1 < layers_.size()) h = activate(h, activation_);
  }
  return h;
}

}  // namespace kprior::nn
