// The README's snippets compile and are the text the README shows; the Adam -> IVON one also
// trains (the learner one is examples/lifelong_agent.cpp, which CTest runs).
#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include "catch.h"
#include "kprior/data/batch_loader.h"
#include "kprior/data/benchmarks.h"
#include "kprior/nn/mlp.h"
#include "kprior/optim/ivon.h"
#include "kprior/regularize/factory.h"
#include "kprior/train/continual_learner.h"
#include "kprior/train/published_settings.h"

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The README's learner snippet, compiled against today's headers (not run here: it trains
// FROMP with IVON on split-MNIST for minutes; the example runs the same calls in CTest).
[[maybe_unused]] kprior::posterior::DiagonalGaussian readme_learner(const std::string& data_dir) {
#include "readme_learner_snippet.inc"
  return q;
}

}  // namespace

TEST_CASE("README snippet: IVON trains a model in place of Adam", "[readme]") {
  torch::manual_seed(0);
  // Two linearly separable classes in 5-D.
  const auto x = torch::randn({400, 5});
  const auto y = (x.select(1, 0) + x.select(1, 1) > 0).to(torch::kLong);
  kprior::data::BatchLoader loader({x, y}, 32, true, 1);
  kprior::nn::MLP model(std::vector<int64_t>{5, 16, 2});
  const double train_size = 400;
  const int epochs = 20;

#include "readme_snippet.inc"

  torch::NoGradGuard no_grad;
  const double acc = model->forward(x).argmax(1).eq(y).to(torch::kFloat64).mean().item<double>();
  CHECK(acc > 0.95);
  CHECK(posterior.numel() == 5 * 16 + 16 + 16 * 2 + 2);
}

TEST_CASE("README shows the snippet verbatim", "[readme]") {
  const auto readme = slurp(std::string(KPRIOR_SOURCE_DIR) + "/README.md");
  const auto snippet = slurp(std::string(KPRIOR_SOURCE_DIR) + "/tests/readme_snippet.inc");
  REQUIRE(!snippet.empty());
  CHECK(readme.find(snippet) != std::string::npos);
  const auto learner = slurp(std::string(KPRIOR_SOURCE_DIR) + "/tests/readme_learner_snippet.inc");
  REQUIRE(!learner.empty());
  CHECK(readme.find(learner) != std::string::npos);
}
