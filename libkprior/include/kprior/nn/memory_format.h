#pragma once
// Channels-last (NHWC) convolution weights (issue #8): on a GPU, cuDNN's convolutions run
// fastest on channels-last tensors, most of all in bf16 (ResNet-18 at 224×224 on an H100:
// 2.1× the images/s, README "On a GPU"). A convolution with a channels-last weight returns a
// channels-last output, so converting the weights converts the whole network's activations.
// The values do not change, only their order in memory.
#include <torch/nn/module.h>

#include <string>

namespace kprior::nn {

enum class MemoryFormat { Auto, Contiguous, ChannelsLast };
/// "auto", "contiguous" or "channels-last" (throws kprior::UsageError otherwise).
MemoryFormat parse_memory_format(const std::string& name);
/// "auto", "contiguous" or "channels-last": the inverse of parse_memory_format.
std::string to_string(MemoryFormat format);

/// True when `module` or a submodule has a 4-D (convolution) weight.
bool has_conv_weights(const torch::nn::Module& module);
/// Auto resolved: channels-last for a model with convolutions on a CUDA device (where it
/// helps), contiguous otherwise; Contiguous and ChannelsLast as given.
MemoryFormat resolve_memory_format(MemoryFormat format, const torch::nn::Module& model, bool cuda);
/// Rewrites every 4-D parameter of `module` in channels-last order in place (the Tensor
/// objects stay the same, so an optimizer built afterwards allocates its state to match), as
/// model.to(memory_format=torch.channels_last) does in Python: LibTorch's Module::to has no
/// memory-format overload.
void to_channels_last(torch::nn::Module& module);

}  // namespace kprior::nn
