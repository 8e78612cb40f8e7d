#pragma once
// The hidden activations the library's models use (ReLU or tanh), shared by the models and the
// layer tape (which records a convolution's activation when it also records its pooling).
#include <torch/types.h>

#include <string>

namespace kprior::nn {

enum class Activation { ReLU, Tanh };

/// Parses "relu" or "tanh" (throws kprior::UsageError otherwise).
Activation parse_activation(const std::string& name);

/// Applies the activation.
torch::Tensor activate(const torch::Tensor& x, Activation activation);

}  // namespace kprior::nn
