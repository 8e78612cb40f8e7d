#pragma once
// The layer tape: LibTorch modules have no forward hooks, so models the library linearizes
// record, during one forward pass, the input and output of each Linear and Conv2d layer.
// With the outputs z_l on the autograd graph, one backward pass per output direction gives
// ∂f/∂z_l for every layer at once, and per-example Jacobians follow as outer products with the
// recorded inputs (METHODS.md §2, "efficient computation").
//
//   struct NetImpl : kprior::nn::TapedModule {
//     torch::Tensor forward_taped(const torch::Tensor& x, LayerTape* tape) override {
//       auto h = torch::relu(tape_linear(fc1, x, tape));   // records (x, fc1(x)) if tape != nullptr
//       return tape_linear(fc2, h, tape);
//     }
//   };
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <string>
#include <vector>

namespace kprior::nn {

enum class LayerKind { Linear, Conv2d };

/// One recorded layer application.
struct TapeEntry {
  LayerKind kind = LayerKind::Linear;
  torch::Tensor input;   // [N, in] or [N, C_in, H, W]
  torch::Tensor output;  // [N, out] or [N, C_out, H', W'] (on the autograd graph)
  torch::Tensor weight;  // the layer's parameters (the same tensors as in parameters())
  torch::Tensor bias;    // undefined when the layer has none
  // Conv2d geometry (unused for Linear).
  std::vector<int64_t> kernel_size, stride, padding, dilation;
};

/// The entries of one forward pass, in execution order.
class LayerTape {
 public:
  void record(TapeEntry entry) { entries_.push_back(std::move(entry)); }
  const std::vector<TapeEntry>& entries() const { return entries_; }
  void clear() { entries_.clear(); }

 private:
  std::vector<TapeEntry> entries_;
};

/// Applies `layer` to `x`, recording the call on `tape` when it is not null.
torch::Tensor tape_linear(torch::nn::Linear& layer, const torch::Tensor& x, LayerTape* tape);
/// As tape_linear for Conv2d (groups = 1, zero padding; other settings throw UsageError).
torch::Tensor tape_conv2d(torch::nn::Conv2d& layer, const torch::Tensor& x, LayerTape* tape);

/// A module whose Linear/Conv2d layers can be recorded. Every parameter of a TapedModule
/// must belong to a recorded layer (the linearization checks this); BatchNorm-free models
/// or models in eval mode give per-example independent outputs, which the method requires.
class TapedModule : public torch::nn::Module {
 public:
  /// Logits [N, outputs]; records every Linear/Conv2d application on `tape` if not null.
  virtual torch::Tensor forward_taped(const torch::Tensor& x, LayerTape* tape) = 0;
  torch::Tensor forward(const torch::Tensor& x) { return forward_taped(x, nullptr); }
};

}  // namespace kprior::nn
