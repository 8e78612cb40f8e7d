#include "kprior/nn/models.h"

#include <torch/torch.h>

#include "kprior/core/error.h"
#include "kprior/nn/cifarnet.h"
#include "kprior/nn/lenet5.h"
#include "kprior/nn/mlp.h"
#include "kprior/nn/resnet.h"

namespace kprior::nn {
namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s;
  for (auto d : shape) s += (s.empty() ? "" : "x") + std::to_string(d);
  return s;
}

// [C, H, W] with H = W = `side` (0: any), else UsageError naming the model.
void require_image(const std::vector<int64_t>& shape, int64_t side, const std::string& model) {
  const bool ok = shape.size() == 3 && (side == 0 || (shape[1] == side && shape[2] == side));
  if (!ok) {
    throw UsageError("model " + model + " needs images [C, " + (side ? std::to_string(side) : "H") + ", " +
                     (side ? std::to_string(side) : "W") + "], the data has examples of shape " +
                     shape_text(shape));
  }
}

}  // namespace

ModelKind parse_model(const std::string& name) {
  if (name == "mlp") return ModelKind::MLP;
  if (name == "lenet5") return ModelKind::LeNet5;
  if (name == "cifarnet") return ModelKind::CifarNet;
  if (name == "resnet18") return ModelKind::ResNet18;
  throw UsageError("model must be mlp, lenet5, cifarnet or resnet18, got '" + name + "'");
}

std::string to_string(ModelKind kind) {
  switch (kind) {
    case ModelKind::MLP: return "mlp";
    case ModelKind::LeNet5: return "lenet5";
    case ModelKind::CifarNet: return "cifarnet";
    case ModelKind::ResNet18: return "resnet18";
  }
  return "?";
}

std::shared_ptr<TapedModule> make_model(ModelKind kind, const std::vector<int64_t>& input_shape,
                                        int64_t outputs, const std::vector<int64_t>& hidden) {
  if (outputs <= 0) throw UsageError("make_model: outputs must be > 0");
  switch (kind) {
    case ModelKind::MLP: {
      int64_t features = 1;
      for (auto d : input_shape) features *= d;
      std::vector<int64_t> widths{features};
      widths.insert(widths.end(), hidden.begin(), hidden.end());
      widths.push_back(outputs);
      return std::make_shared<MLPImpl>(widths);
    }
    case ModelKind::LeNet5:
      require_image(input_shape, 28, "lenet5");
      return std::make_shared<LeNet5Impl>(outputs, input_shape[0]);
    case ModelKind::CifarNet:
      require_image(input_shape, 32, "cifarnet");
      return std::make_shared<CifarNetImpl>(outputs, input_shape[0]);
    case ModelKind::ResNet18: {
      require_image(input_shape, 0, "resnet18");
      const bool small = input_shape[1] <= 64 && input_shape[2] <= 64;
      return std::make_shared<ResNet18Impl>(small ? ResNetStem::Cifar : ResNetStem::ImageNet, outputs,
                                            input_shape[0]);
    }
  }
  throw UsageError("unknown model");
}

}  // namespace kprior::nn
