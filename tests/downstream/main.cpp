// Uses the installed library as a user's project would: a split task sequence on a tiny
// synthetic dataset, and the README's Adam -> IVON snippet (the same file the test suite
// compiles against the build tree), so the installed headers and library carry both.
#include <torch/torch.h>

#include <iostream>

#include "kprior/core/version.h"
#include "kprior/data/batch_loader.h"
#include "kprior/data/task_sequence.h"
#include "kprior/nn/mlp.h"
#include "kprior/optim/ivon.h"

namespace {

bool readme_snippet_trains() {
  torch::manual_seed(0);
  const auto x = torch::randn({200, 5});
  const auto y = (x.select(1, 0) + x.select(1, 1) > 0).to(torch::kLong);
  kprior::data::BatchLoader loader({x, y}, 32, true, 1);
  kprior::nn::MLP model(std::vector<int64_t>{5, 16, 2});
  const double train_size = 200;
  const int epochs = 10;
#include "../readme_snippet.inc"
  torch::NoGradGuard no_grad;
  const double acc = model->forward(x).argmax(1).eq(y).to(torch::kFloat64).mean().item<double>();
  std::cout << "README snippet: accuracy " << acc << ", posterior over " << posterior.numel() << " parameters\n";
  return acc > 0.9 && posterior.numel() == 5 * 16 + 16 + 16 * 2 + 2;
}

}  // namespace

int main() {
  kprior::data::Dataset d{torch::rand({8, 1, 2, 2}), torch::arange(8) % 4};
  auto seq = kprior::data::make_split_sequence("tiny", d, d, {{0, 1}, {2, 3}}, 4);
  std::cout << "kprior " << kprior::version() << ": " << seq.size() << " tasks, "
            << seq.tasks[1].train.size() << " examples in task 1\n";
  const bool split_ok = seq.size() == 2 && seq.tasks[1].train.size() == 4;
  return split_ok && readme_snippet_trains() ? 0 : 1;
}
