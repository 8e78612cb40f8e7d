#include "fashion.h"

#include <fmt/core.h>
#include <torch/torch.h>

#include <filesystem>

#include "kprior/checkpoint/file.h"
#include "kprior/core/error.h"
#include "kprior/data/channel_stats.h"
#include "kprior/nn/lenet5.h"
#include "kprior/nn/mlp.h"

namespace mpe_influence {

using namespace kprior;
namespace fs = std::filesystem;

const std::vector<std::string> kFashionNames = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                                "sandal",  "shirt",   "sneaker",  "bag",   "boot"};

std::string fashion_dir(const std::string& dir) {
  return fs::exists(fs::path(dir) / "fashion-mnist") ? (fs::path(dir) / "fashion-mnist").string() : dir;
}

// The inputs a model sees: "standardized" as the publication's Fashion-MNIST transform
// ((x − 0.2860)/0.3530 on pixels in [0, 1]), or "unit" (pixels in [0, 1], what mpe-influence
// trained on before it standardised; model files of then record no input scaling).
void scale_inputs(data::Dataset& train, data::Dataset& test, const std::string& inputs) {
  if (inputs == "unit") return;
  data::normalize_grey(train.inputs, data::fashion_mnist_stats());
  data::normalize_grey(test.inputs, data::fashion_mnist_stats());
}

// Refuses, before any training, removals the training set cannot give: a class it does not
// hold (a small --train-size), or single removals from fewer than two examples.
void require_removable(const data::Dataset& train, const std::vector<int64_t>& classes, int64_t listed,
                       int64_t per_example, bool retrain) {
  const auto counts = torch::bincount(train.targets, {}, 10);
  for (const auto c : classes) {
    if (counts[c].item<int64_t>() == 0) {
      throw UsageError(fmt::format("--remove-class: class {} ({}) has no examples among the {} training images",
                                   c, kFashionNames[static_cast<size_t>(c)], train.size()));
    }
    if (retrain && counts[c].item<int64_t>() == train.size()) {
      throw UsageError(fmt::format("--remove-class {} with --retrain: the {} training images are all of that class, "
                                   "and retraining without them has nothing to train on", c, train.size()));
    }
  }
  if (retrain && listed == train.size()) {
    throw UsageError("--remove-indices with --retrain: the file lists every training image, and retraining without "
                     "them has nothing to train on");
  }
  if (per_example > 0 && train.size() < 2) {
    throw UsageError("--per-example needs at least 2 training images to remove one and retrain");
  }
}

std::shared_ptr<nn::TapedModule> make_model(const std::string& name) {
  // The publication's models: a 32-16 tanh MLP and LeNet-5 with tanh and average pooling
  // (Nickl et al. 2023, §4 and App. D).
  if (name == "mlp") return nn::MLP(std::vector<int64_t>{784, 32, 16, 10}, nn::Activation::Tanh).ptr();
  if (name == "lenet5") return nn::LeNet5(10, 1, nn::Activation::Tanh, nn::Pooling::Average).ptr();
  throw UsageError("--model must be mlp or lenet5, got '" + name + "'");
}

// The name a model file records: LeNet-5's says which one, since the files of kprior 0.1.0
// before it followed the publication hold a ReLU, max-pooling LeNet-5 of the same shapes.
std::string architecture_name(const std::string& model) {
  return model == "lenet5" ? "lenet5-tanh-avgpool" : model;
}

// What to tell the user about a file's architecture: the --model that loads it.
std::string model_option_of(const std::string& architecture) {
  if (architecture == "mlp") return "--model mlp";
  if (architecture == "lenet5-tanh-avgpool") return "--model lenet5";
  if (architecture == "lenet5") {
    return "a ReLU, max-pooling LeNet-5 of an earlier kprior, which no --model loads now (mpe-influence's "
           "LeNet-5 is the published tanh, average-pooling one): train it again";
  }
  return "an unknown architecture '" + architecture + "'";
}

std::string model_of_file(const std::string& path) {
  const auto tree = checkpoint::read(path);
  if (tree.has_attr("model@architecture") && tree.text("model@architecture") == architecture_name("lenet5")) {
    return "lenet5";
  }
  return "mlp";
}

}  // namespace mpe_influence
