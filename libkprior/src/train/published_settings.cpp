#include "kprior/train/published_settings.h"

#include "kprior/core/error.h"

namespace kprior::train {

PublishedSettings published_settings(const std::string& benchmark) {
  if (benchmark == "split-mnist" || benchmark == "split-fashion") {
    return {{256, 256}, 1e-4, 15, 128, 10.0, 1e-6, 1e-3, 0.1 * 10.0, 40, "mlp"};
  }
  if (benchmark == "permuted-mnist") {
    return {{100, 100}, 1e-3, 10, 128, 0.5, 1e-5, 1e-5, 0.01 * 0.5, 200, "mlp"};
  }
  if (benchmark == "split-cifar" || benchmark == "split-cifar100") {
    return {{}, 1e-3, 80, 256, 10.0, 1e-6, 1e-3, 0.0, 200, "cifarnet"};
  }
  if (benchmark == "split-tinyimagenet") return {{}, 1e-3, 30, 256, 10.0, 1e-6, 1e-3, 0.0, 200, "resnet18"};
  if (benchmark == "split-imagenet") return {{}, 1e-3, 10, 256, 10.0, 1e-6, 1e-3, 0.0, 200, "resnet18"};
  if (benchmark == "split-h5") return {{256, 256}, 1e-3, 10, 128, 10.0, 1e-6, 1e-3, 0.0, 40, "mlp"};
  throw UsageError("no published settings for '" + benchmark + "'");
}

}  // namespace kprior::train
