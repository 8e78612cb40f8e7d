// One training step (forward, backward, optimizer) with IVON (1 MC sample) vs Adam, AdamW and
// SGD, in one process, on an MLP 784-256-256-10 at batch 128 and a small CNN at batch 64.
// Optimizers are timed in interleaved rounds and the median per step is reported, with the
// ratio to Adam's step. Usage: bench_optim_step [--threads N] [--steps N] [--rounds N]
#include <fmt/core.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <string>

#include "kprior/core/threads.h"
#include "kprior/optim/ivon.h"

namespace {

struct MlpImpl : torch::nn::Module {
  torch::nn::Linear l1{nullptr}, l2{nullptr}, l3{nullptr};
  MlpImpl() {
    l1 = register_module("l1", torch::nn::Linear(784, 256));
    l2 = register_module("l2", torch::nn::Linear(256, 256));
    l3 = register_module("l3", torch::nn::Linear(256, 10));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return l3(torch::relu(l2(torch::relu(l1(x.flatten(1))))));
  }
};
TORCH_MODULE(Mlp);

// LeNet-5-sized CNN: conv6-pool-conv16-pool-fc120-fc84-fc10.
struct CnnImpl : torch::nn::Module {
  torch::nn::Conv2d c1{nullptr}, c2{nullptr};
  torch::nn::Linear f1{nullptr}, f2{nullptr}, f3{nullptr};
  CnnImpl() {
    c1 = register_module("c1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 6, 5).padding(2)));
    c2 = register_module("c2", torch::nn::Conv2d(6, 16, 5));
    f1 = register_module("f1", torch::nn::Linear(16 * 5 * 5, 120));
    f2 = register_module("f2", torch::nn::Linear(120, 84));
    f3 = register_module("f3", torch::nn::Linear(84, 10));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = torch::max_pool2d(torch::relu(c1(x)), 2);
    h = torch::max_pool2d(torch::relu(c2(h)), 2);
    return f3(torch::relu(f2(torch::relu(f1(h.flatten(1))))));
  }
};
TORCH_MODULE(Cnn);

using Clock = std::chrono::steady_clock;

// Times `steps` calls of `step` and returns milliseconds per step.
double time_steps(const std::function<void()>& step, int steps) {
  const auto start = Clock::now();
  for (int i = 0; i < steps; ++i) step();
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count() / steps;
}

template <typename Model>
void run_workload(const std::string& name, int64_t batch, std::vector<int64_t> input_shape,
                  int steps, int rounds) {
  torch::manual_seed(0);
  input_shape.insert(input_shape.begin(), batch);
  const auto x = torch::rand(input_shape);
  const auto y = torch::randint(0, 10, {batch});
  auto loss_of = [&](Model& m) { return torch::nn::functional::cross_entropy(m->forward(x), y); };

  std::map<std::string, std::function<void()>> steppers;
  std::vector<std::shared_ptr<void>> keep;
  auto add_torch = [&](const std::string& label, auto make_opt) {
    auto model = std::make_shared<Model>();
    auto opt = std::shared_ptr<torch::optim::Optimizer>(make_opt((*model)->parameters()));
    keep.push_back(model);
    keep.push_back(opt);
    steppers[label] = [model, opt, &loss_of] {
      opt->zero_grad();
      loss_of(*model).backward();
      opt->step();
    };
  };
  add_torch("SGD", [](auto p) { return new torch::optim::SGD(p, torch::optim::SGDOptions(0.01).momentum(0.9)); });
  add_torch("Adam", [](auto p) { return new torch::optim::Adam(p, torch::optim::AdamOptions(1e-3)); });
  add_torch("AdamW", [](auto p) { return new torch::optim::AdamW(p, torch::optim::AdamWOptions(1e-3)); });
  {
    auto model = std::make_shared<Model>();
    auto opt = std::make_shared<kprior::optim::IVON>((*model)->parameters(),
                                                     kprior::optim::IVONOptions(0.1, 60000));
    keep.push_back(model);
    keep.push_back(opt);
    steppers["IVON"] = [model, opt, &loss_of] {
      {
        auto sample = opt->sampled_params(true);
        loss_of(*model).backward();
      }
      opt->step();
    };
  }
  std::map<std::string, std::vector<double>> times;
  for (auto& [label, step] : steppers) time_steps(step, steps / 4 + 1);  // warm-up
  for (int r = 0; r < rounds; ++r) {
    for (auto& [label, step] : steppers) times[label].push_back(time_steps(step, steps));
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double adam = median(times["Adam"]);
  fmt::print("\n{} (batch {}): median ms per step over {} rounds of {} steps\n", name, batch,
             rounds, steps);
  fmt::print("  {:<6} {:>9} {:>9}\n", "optim", "ms/step", "vs Adam");
  for (const char* label : {"SGD", "Adam", "AdamW", "IVON"}) {
    const double t = median(times[label]);
    fmt::print("  {:<6} {:>9.3f} {:>8.3f}x\n", label, t, t / adam);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, steps = 50, rounds = 7;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
  }
  const int n = kprior::set_threads(threads);
  fmt::print("bench_optim_step: LibTorch {} intra-op threads\n", n);
  run_workload<Mlp>("MLP 784-256-256-10", 128, {784}, steps, rounds);
  run_workload<Cnn>("CNN (LeNet-5 size)", 64, {1, 28, 28}, steps, rounds);
}
