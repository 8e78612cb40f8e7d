#pragma once
// The models by name, as programs such as kprior-run choose them (--model). All are
// TapedModules: every method (including the linearized ones) works with each.
#include <memory>
#include <string>
#include <vector>

#include "kprior/nn/layer_tape.h"

namespace kprior::nn {

enum class ModelKind { MLP, LeNet5, CifarNet, ResNet18 };

/// "mlp", "lenet5", "cifarnet" or "resnet18" (throws kprior::UsageError otherwise).
ModelKind parse_model(const std::string& name);
std::string to_string(ModelKind kind);

/// A model for inputs of shape `input_shape` (one example: [features...] or [C, H, W]) and
/// `outputs` logits:
///   mlp       input flattened, hidden widths `hidden`, ReLU;
///   lenet5    [C, 28, 28] inputs only (its fc1 expects 16x5x5);
///   cifarnet  [C, 32, 32] inputs only (its fc1 expects 64x6x6);
///   resnet18  any [C, H, W]: the CIFAR stem (3x3, no max-pool) for H, W <= 64 (CIFAR,
///             TinyImageNet), the ImageNet stem (7x7/2 + max-pool) above; linearized with
///             BatchNorm in eval mode (resnet.h).
/// Throws UsageError when the input shape does not fit the model.
std::shared_ptr<TapedModule> make_model(ModelKind kind, const std::vector<int64_t>& input_shape,
                                        int64_t outputs, const std::vector<int64_t>& hidden = {});

}  // namespace kprior::nn
