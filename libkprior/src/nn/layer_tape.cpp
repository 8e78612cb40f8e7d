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

torch::Tensor tape_linear(torch::nn::Linear& layer, const torch::Tensor& x, LayerTape* tape) {
  auto out = layer->forward(x);
  if (tape != nullptr) {
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

torch::Tensor tape_conv2d(torch::nn::Conv2d& layer, const torch::Tensor& x, LayerTape* tape) {
  auto out = layer->forward(x);
  if (tape != nullptr) {
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
    tape->record(std::move(e));
  }
  return out;
}

}  // namespace kprior::nn
