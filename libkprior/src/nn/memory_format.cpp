#include "kprior/nn/memory_format.h"

#include <torch/types.h>
#include <torch/utils.h>

#include "kprior/core/error.h"

namespace kprior::nn {

MemoryFormat parse_memory_format(const std::string& name) {
  if (name == "auto") return MemoryFormat::Auto;
  if (name == "contiguous") return MemoryFormat::Contiguous;
  if (name == "channels-last") return MemoryFormat::ChannelsLast;
  throw UsageError("memory format must be auto, contiguous or channels-last, got '" + name + "'");
}

std::string to_string(MemoryFormat format) {
  switch (format) {
    case MemoryFormat::Contiguous: return "contiguous";
    case MemoryFormat::ChannelsLast: return "channels-last";
    case MemoryFormat::Auto: break;
  }
  return "auto";
}

bool has_conv_weights(const torch::nn::Module& module) {
  for (const auto& p : module.parameters()) {
    if (p.dim() == 4) return true;
  }
  return false;
}

MemoryFormat resolve_memory_format(MemoryFormat format, const torch::nn::Module& model, bool cuda) {
  if (format != MemoryFormat::Auto) return format;
  return cuda && has_conv_weights(model) ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
  }
}

}  // namespace kprior::nn
