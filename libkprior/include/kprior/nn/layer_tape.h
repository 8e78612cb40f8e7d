#pragma once
// The layer tape: LibTorch modules have no forward hooks, so models the library linearizes
// record, during one forward pass, the input and output of each Linear, Conv2d and (eval-mode)
// BatchNorm2d layer.
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
#include "kprior/nn/activation.h"
#include "kprior/nn/precision.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kprior::nn {

enum class LayerKind { Linear, Conv2d, BatchNorm2d };

/// One recorded layer application. A BatchNorm2d entry (eval mode only) records the
/// normalised input x̂ = (x − running_mean) / sqrt(running_var + eps), fixed per channel, as
/// its input, so that its output is y = γ x̂ + β: linear in (γ, β) per example, like the others.
struct TapeEntry {
  LayerKind kind = LayerKind::Linear;
  torch::Tensor input;   // [N, in] or [N, C_in, H, W] (BatchNorm2d: x̂, [N, C, H, W])
  torch::Tensor output;  // [N, out] or [N, C_out, H', W'] (on the autograd graph)
  torch::Tensor weight;  // the layer's parameters (the same tensors as in parameters())
  torch::Tensor bias;    // undefined when the layer has none
  // Conv2d geometry (unused for Linear).
  std::vector<int64_t> kernel_size, stride, padding, dilation;
  // A Conv2d recorded with its activation and max pooling (tape_conv2d_pool): `output` is then
  // the pooled map y [N, C_out, H/k, W/k], and these say, per pooled value, which position of
  // the H×W convolution output won (flat index) and the activation's slope there, so that
  // ∂y/∂(weights) is the convolution's Jacobian at the winner times the slope. Undefined for
  // a plain Conv2d entry.
  torch::Tensor pool_index;          // int64 [N, C_out, H/k, W/k]
  torch::Tensor pool_slope;          // [N, C_out, H/k, W/k]
  std::vector<int64_t> conv_size;    // {H, W} of the convolution output
  // The model's word that `input` is the previous entry's output and feeds nothing else, so
  // that the previous entry's signals follow from this one's (see TapeInput).
  bool input_from_previous = false;
  bool pooled() const { return pool_index.defined(); }
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

/// Applies `layer` to `x`, recording the call on `tape` when it is not null; a taped call
/// needs x [N, in] (UsageError otherwise: per-token Linear layers are not linearized).
torch::Tensor tape_linear(torch::nn::Linear& layer, const torch::Tensor& x, LayerTape* tape);
/// As tape_linear for Conv2d (groups = 1, zero padding, with or without bias; other settings
/// throw UsageError).
torch::Tensor tape_conv2d(torch::nn::Conv2d& layer, const torch::Tensor& x, LayerTape* tape);
/// What a taped layer's input is. PreviousOnly: the output of the layer taped just before and
/// used by nothing else (LeNet-5's second convolution). The linearization then takes the
/// previous layer's signals from this layer's by its own backward pass through the pooling
/// (only the winners' multiply-adds) instead of autograd's. The tape checks the first half
/// (the same tensor); the second is the model's promise: if the tensor also fed another
/// layer, its signals would miss that path.
enum class TapeInput { Any, PreviousOnly };

/// max_pool2d(activate(layer(x)), pool): a convolution followed by its activation and a k×k max
/// pooling with stride k, recorded as one entry whose signals are taken at the pooled output.
/// The linearization then never forms the gradients of the full-size convolution output
/// (4× larger for k = 2, and 3/4 zeros): the per-example weight gradients sum only over the
/// pooling winners. The value returned is the same as without a tape.
torch::Tensor tape_conv2d_pool(torch::nn::Conv2d& layer, const torch::Tensor& x, Activation activation,
                               int64_t pool, LayerTape* tape, TapeInput input = TapeInput::Any);
/// As tape_linear for BatchNorm2d; the output is layer->forward(x) either way. With a tape the
/// layer must be in eval mode with running statistics (in train mode BatchNorm normalises by
/// the batch's statistics, which couples the examples of a batch: there is no per-example
/// linearization) — otherwise UsageError. affine=false has no parameters and is not recorded.
torch::Tensor tape_batchnorm2d(torch::nn::BatchNorm2d& layer, const torch::Tensor& x, LayerTape* tape);

/// A module whose Linear/Conv2d/BatchNorm2d layers can be recorded. Every parameter of a
/// TapedModule must belong to a recorded layer (the linearization checks this). Outputs must
/// be per-example independent, which BatchNorm gives only in eval mode: the linearization
/// runs every model in eval mode (EvalModeGuard).
class TapedModule : public torch::nn::Module {
 public:
  /// Logits [N, outputs]; records every taped layer application on `tape` if not null.
  virtual torch::Tensor forward_taped(const torch::Tensor& x, LayerTape* tape) = 0;
  /// Logits without a tape. With forward_precision() BFloat16 the pass runs under bf16
  /// autocast and its logits come back as fp32, so losses and regularizers keep their
  /// precision. Taped forwards (linearization) never autocast.
  torch::Tensor forward(const torch::Tensor& x);
  /// The precision of forward(); the learner sets it for its training steps only
  /// (ForwardPrecisionGuard), so evaluation and boundary work run in the parameters' precision.
  void set_forward_precision(Precision precision) { forward_precision_ = precision; }
  Precision forward_precision() const { return forward_precision_; }

 private:
  Precision forward_precision_ = Precision::Float32;
};

/// Sets a model's forward precision for the guard's lifetime, then restores the previous one.
class ForwardPrecisionGuard {
 public:
  ForwardPrecisionGuard(TapedModule& model, Precision precision)
      : model_(model), previous_(model.forward_precision()) {
    model_.set_forward_precision(precision);
  }
  ~ForwardPrecisionGuard() { model_.set_forward_precision(previous_); }
  ForwardPrecisionGuard(const ForwardPrecisionGuard&) = delete;
  ForwardPrecisionGuard& operator=(const ForwardPrecisionGuard&) = delete;

 private:
  TapedModule& model_;
  Precision previous_;
};

/// Puts a module and its submodules in eval mode for the guard's lifetime, then restores each
/// module's own previous mode.
class EvalModeGuard {
 public:
  explicit EvalModeGuard(torch::nn::Module& module);
  ~EvalModeGuard();
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  torch::nn::Module& module_;
  bool self_training_ = false;
  std::vector<std::pair<std::shared_ptr<torch::nn::Module>, bool>> saved_;  // submodules, pre-order
};

}  // namespace kprior::nn
