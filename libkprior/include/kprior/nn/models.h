#pragma once
// The models by name, as programs such as kprior-run choose them (--model), and an adapter
// that lets the continual learner train a model without a layer tape (ResNet-18).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kprior/nn/layer_tape.h"

namespace kprior::nn {

enum class ModelKind { MLP, LeNet5, CifarNet, ResNet18 };

/// "mlp", "lenet5", "cifarnet" or "resnet18" (throws kprior::UsageError otherwise).
ModelKind parse_model(const std::string& name);
std::string to_string(ModelKind kind);

/// Whether every parameter of the model lies in a taped Linear/Conv2d layer, so that
/// Jacobians, kernels and curvature (FROMP, EWC, EWC+FR+replay, MPE selection, the Laplace
/// posterior) can be computed. False for ResNet-18, whose BatchNorm scales and shifts are
/// parameters outside any taped layer.
bool linearizable(ModelKind kind);

/// A model for inputs of shape `input_shape` (one example: [features...] or [C, H, W]) and
/// `outputs` logits:
///   mlp       input flattened, hidden widths `hidden`, ReLU;
///   lenet5    [C, 28, 28] inputs only (its fc1 expects 16x5x5);
///   cifarnet  [C, 32, 32] inputs only (its fc1 expects 64x6x6);
///   resnet18  any [C, H, W]: the CIFAR stem (3x3, no max-pool) for H, W <= 64 (CIFAR,
///             TinyImageNet), the ImageNet stem (7x7/2 + max-pool) above; wrapped in
///             UntapedModel. Not linearizable (see linearizable()).
/// Throws UsageError when the input shape does not fit the model.
std::shared_ptr<TapedModule> make_model(ModelKind kind, const std::vector<int64_t>& input_shape,
                                        int64_t outputs, const std::vector<int64_t>& hidden = {});

/// A module without a layer tape, presented as a TapedModule so that the learner can train it
/// with the methods that need only forward passes (fine-tuning, replay, K-prior, the IVON
/// prior, joint training, memory chosen by Tr Λ or at random). A forward pass that asks for a
/// tape throws UsageError naming the model. The wrapped module is registered as "net", so it
/// follows train()/eval()/to() and its parameters and buffers are this module's.
class UntapedModelImpl : public TapedModule {
 public:
  UntapedModelImpl(std::shared_ptr<torch::nn::Module> net,
                   std::function<torch::Tensor(const torch::Tensor&)> forward, std::string name);
  torch::Tensor forward_taped(const torch::Tensor& x, LayerTape* tape) override;

 private:
  std::shared_ptr<torch::nn::Module> net_;
  std::function<torch::Tensor(const torch::Tensor&)> forward_;
  std::string name_;
};

}  // namespace kprior::nn
