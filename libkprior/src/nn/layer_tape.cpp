#include "kprior/nn/layer_tape.h"

#include <torch/torch.h>
#include <torch/version.h>

#include "kprior/core/error.h"

namespace kprior::nn {
namespace {
// LibTorch 1.13 has its own c10::variant; 2.x uses std::variant.
#if TORCH_VERSION_MAJOR >= 2
namespace var = std;
#else
namespace var = c10;
#endif
}  // namespace

torch::Tensor TapedModule::forward(const torch::Tensor& x) {
  if (forward_precision_ == Precision::Float32) return forward_taped(x, nullptr);
  // Only the forward pass is autocast (as torch.autocast is used): autograd then runs each
  // op's backward in the dtype its forward ran in, and the fp32 parameters get fp32 gradients
  // through autocast's differentiable casts.
  torch::Tensor out;
  {
    AutocastScope autocast(forward_precision_, x.device().type());
    out = forward_taped(x, nullptr);
  }
  return out.scalar_type() == torch::kBFloat16 ? out.to(torch::kFloat) : out;
}

torch::Tensor tape_linear(torch::nn::Linear& layer, const torch::Tensor& x, LayerTape* tape) {
  auto out = layer->forward(x);
  if (tape != nullptr) {
    // The per-example Jacobian s aᵀ needs one input row per example; a Linear applied to
    // [N, T, F] (per token) would be taken per token and give wrong variances.
    if (x.dim() != 2) {
      throw UsageError("tape_linear: a taped Linear needs [N, features] inputs, got " + std::to_string(x.dim()) +
                       " dimensions (flatten per-example inputs, or apply the layer outside the tape)");
    }
    TapeEntry e;
    e.kind = LayerKind::Linear;
    e.input = x;
    e.output = out;
    e.weight = layer->weight;
    e.bias = layer->options.bias() ? layer->bias : torch::Tensor();
    tape->record(std::move(e));
  }
  return out;
}

namespace {

// The Conv2d entry for `layer` applied to `x` giving `out`; throws for settings the
// per-example gradients do not cover.
TapeEntry conv2d_entry(torch::nn::Conv2d& layer, const torch::Tensor& x, const torch::Tensor& out) {
  const auto& o = layer->options;
  if (o.groups() != 1) throw UsageError("layer tape: Conv2d with groups != 1 is not supported");
  const auto* padding = var::get_if<torch::ExpandingArray<2>>(&o.padding());
  if (padding == nullptr) throw UsageError("layer tape: Conv2d needs explicit numeric padding");
  if (var::get_if<torch::enumtype::kZeros>(&o.padding_mode()) == nullptr) {
    throw UsageError("layer tape: Conv2d supports zero padding only");
  }
  TapeEntry e;
  e.kind = LayerKind::Conv2d;
  e.input = x;
  e.output = out;
  e.weight = layer->weight;
  e.bias = o.bias() ? layer->bias : torch::Tensor();
  auto vec = [](const torch::ExpandingArray<2>& a) { return std::vector<int64_t>{a->at(0), a->at(1)}; };
  e.kernel_size = vec(o.kernel_size());
  e.stride = vec(o.stride());
  e.padding = vec(*padding);
  e.dilation = vec(o.dilation());
  return e;
}

}  // namespace

torch::Tensor tape_conv2d_pool(torch::nn::Conv2d& layer, const torch::Tensor& x, Activation activation,
                               int64_t pool, LayerTape* tape, TapeInput input) {
  if (pool < 1) throw UsageError("layer tape: pooling size must be >= 1, got " + std::to_string(pool));
  const bool chained = tape != nullptr && input == TapeInput::PreviousOnly;
  if (chained && (tape->entries().empty() || !tape->entries().back().output.is_same(x))) {
    throw UsageError("layer tape: TapeInput::PreviousOnly, but the input is not the output of the layer taped before");
  }
  const auto z = layer->forward(x);
  if (tape == nullptr) return torch::max_pool2d(activate(z, activation), pool);
  // max_pool2d returns the same values; the indices say which position of z won.
  auto [y, index] = torch::max_pool2d_with_indices(activate(z, activation), pool);
  auto e = conv2d_entry(layer, x, y);
  torch::NoGradGuard no_grad;
  e.pool_index = index;
  const auto yd = y.detach();
  // The slope at the winner follows from the pooled value: relu'(z) = [z > 0] = [y > 0] (0 at
  // z = 0, as autograd takes it; a window with no positive value has slope 0 whichever
  // position won), tanh'(z) = 1 − y².
  e.pool_slope = activation == Activation::ReLU ? (yd > 0).to(yd.scalar_type()) : 1 - yd.square();
  e.conv_size = {z.size(2), z.size(3)};
  e.input_from_previous = chained;
  tape->record(std::move(e));
  return y;
}

torch::Tensor tape_conv2d(torch::nn::Conv2d& layer, const torch::Tensor& x, LayerTape* tape) {
  auto out = layer->forward(x);
  if (tape != nullptr) tape->record(conv2d_entry(layer, x, out));
  return out;
}

torch::Tensor tape_batchnorm2d(torch::nn::BatchNorm2d& layer, const torch::Tensor& x, LayerTape* tape) {
  const auto& o = layer->options;
  if (tape != nullptr) {
    if (layer->is_training()) {
      throw UsageError("layer tape: BatchNorm2d in train mode normalises by the statistics of the batch, which "
                       "couples its examples (there is no per-example linearization); put the model in eval mode "
                       "(running statistics) to linearize it");
    }
    if (!o.track_running_stats()) {
      throw UsageError("layer tape: BatchNorm2d without running statistics normalises by the batch's statistics "
                       "even in eval mode; it cannot be linearized per example");
    }
  }
  auto out = layer->forward(x);
  if (tape != nullptr && o.affine()) {  // affine=false: a fixed map without parameters, nothing to record
    TapeEntry e;
    e.kind = LayerKind::BatchNorm2d;
    {
      torch::NoGradGuard no_grad;  // x̂ only enters the per-example gradient algebra
      const std::vector<int64_t> per_channel{1, -1, 1, 1};
      e.input = (x.detach() - layer->running_mean.view(per_channel)) /
                (layer->running_var.view(per_channel) + o.eps()).sqrt();
    }
    e.output = out;
    e.weight = layer->weight;
    e.bias = layer->bias;
    tape->record(std::move(e));
  }
  return out;
}

EvalModeGuard::EvalModeGuard(torch::nn::Module& module)
    : module_(module), self_training_(module.is_training()) {
  // modules(false) lists the submodules in pre-order (every module before its descendants),
  // the order in which restoring one module's mode at a time leaves each with its own.
  for (const auto& m : module.modules(/*include_self=*/false)) saved_.emplace_back(m, m->is_training());
  module.eval();
}

EvalModeGuard::~EvalModeGuard() {
  module_.train(self_training_);  // recursive: the submodules follow below
  for (auto& [m, training] : saved_) m->train(training);
}

}  // namespace kprior::nn
