// Linearization cost over 10,000 MNIST-sized inputs, 10 classes, MLP 784-256-256-10 and
// LeNet-5 (max pooling, and the published tanh/average-pooling one): predictive variance and GGN diagonal by the fast layer-wise path, by the oracle
// (one backward pass per example and class; timed on a subset and scaled), and one plain
// forward+backward pass over the same data, in one program. Also the peak resident memory
// after running the fast path on 2,000 and then 10,000 inputs (flat when streaming works).
// Usage: bench_linearize [--threads N] [--inputs N] [--oracle-inputs N]
#include <fmt/core.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <chrono>
#include <cstring>
#include <functional>

#include "kprior/core/allocator.h"
#include "kprior/core/threads.h"
#include "kprior/linearize/linearize.h"
#include "kprior/linearize/signals.h"
#include "kprior/nn/lenet5.h"
#include "kprior/nn/mlp.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds(const std::function<void()>& fn) {
  const auto start = Clock::now();
  fn();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double peak_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

void run(const std::string& name, kprior::nn::TapedModule& model, int64_t inputs, int64_t oracle_inputs) {
  torch::manual_seed(0);
  model.eval();
  const auto x = torch::rand({inputs, 1, 28, 28});
  const auto y = torch::randint(0, 10, {inputs});
  const std::vector<int64_t> cols{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<torch::Tensor> var;
  for (const auto& p : model.parameters()) var.push_back(torch::full_like(p, 1e-3));
  using kprior::linearize::Curvature;

  const double fwd_bwd = seconds([&] {
    for (int64_t s = 0; s < inputs; s += 512) {
      model.zero_grad();
      const auto xb = x.slice(0, s, s + 512);
      torch::nn::functional::cross_entropy(model.forward(xb), y.slice(0, s, s + 512)).backward();
    }
  });
  // Warm-up and the memory probe at a fifth of the data.
  kprior::linearize::logit_variance(model, x.slice(0, 0, inputs / 5), cols, var);
  kprior::linearize::curvature_diagonal(model, x.slice(0, 0, inputs / 5), {}, cols, Curvature::GGN, 512);
  const double mem_small = peak_mib();
  const double fast_var = seconds([&] { kprior::linearize::logit_variance(model, x, cols, var); });
  const double fast_ggn = seconds([&] {
    kprior::linearize::curvature_diagonal(model, x, {}, cols, Curvature::GGN, 512);
  });
  const double mem_full = peak_mib();
  // The part of the fast path that is the C backward passes to the layer outputs (no products).
  const double signals = seconds([&] {
    for (int64_t s = 0; s < inputs; s += 512) {
      kprior::linearize::backprop_signals(model, x.slice(0, s, s + 512), kprior::linearize::unit_rows(cols));
    }
  });
  const auto xs = x.slice(0, 0, oracle_inputs);
  const auto params = model.parameters();
  const auto forward = [&](const torch::Tensor& in) { return model.forward(in); };
  std::vector<torch::Tensor> flat;
  for (const auto& v : var) flat.push_back(v.reshape(-1));
  const auto sigma = torch::cat(flat);
  const double oracle_subset = seconds([&] {
    // One example at a time, so the oracle's Jacobian does not dominate the process's memory.
    for (int64_t n = 0; n < oracle_inputs; ++n) {
      const auto j = kprior::linearize::jacobian_oracle(forward, params, xs.slice(0, n, n + 1), cols);
      (j.square() * sigma).sum(-1);
    }
  });
  const double oracle = oracle_subset * static_cast<double>(inputs) / static_cast<double>(oracle_inputs);

  fmt::print("\n{} ({} inputs, 10 classes)\n", name, inputs);
  fmt::print("  {:<34} {:>9}  {:>12}\n", "", "seconds", "vs fwd+bwd");
  fmt::print("  {:<34} {:>9.3f}  {:>11.2f}x\n", "forward+backward (batches of 512)", fwd_bwd, 1.0);
  fmt::print("  {:<34} {:>9.3f}  {:>11.2f}x\n", "fast: logit variance diag(JΣJᵀ)", fast_var, fast_var / fwd_bwd);
  fmt::print("  {:<34} {:>9.3f}  {:>11.2f}x\n", "fast: GGN diagonal", fast_ggn, fast_ggn / fwd_bwd);
  fmt::print("  {:<34} {:>9.3f}  {:>11.2f}x\n", "  of which C backward passes", signals, signals / fwd_bwd);
  fmt::print("  {:<34} {:>9.3f}  {:>11.2f}x   (timed on {} inputs, scaled)\n",
             "oracle: logit variance", oracle, oracle / fwd_bwd, oracle_inputs);
  fmt::print("  oracle / fast variance: {:.0f}x;  peak RSS after {} inputs {:.0f} MiB, after {} {:.0f} MiB\n",
             oracle / fast_var, inputs / 5, mem_small, inputs, mem_full);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  int64_t inputs = 10000, oracle_inputs = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--inputs")) inputs = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--oracle-inputs")) oracle_inputs = std::atoll(argv[i + 1]);
  }
  kprior::reuse_large_allocations();  // as the apps do: no page-fault churn on large batches
  fmt::print("bench_linearize: LibTorch {} threads\n", kprior::set_threads(threads));
  torch::manual_seed(0);
  kprior::nn::MLP mlp(std::vector<int64_t>{784, 256, 256, 10});
  run("MLP 784-256-256-10", *mlp, inputs, oracle_inputs);
  kprior::nn::LeNet5 lenet(10);
  run("LeNet-5", *lenet, inputs, oracle_inputs);
  // mpe-influence's published LeNet-5: tanh and average pooling, taped plainly (no
  // winners-only pooled path).
  kprior::nn::LeNet5 lenet_avg(10, 1, kprior::nn::Activation::Tanh, kprior::nn::Pooling::Average);
  run("LeNet-5 tanh, average pooling", *lenet_avg, inputs, oracle_inputs);
}
