// Training throughput of ResNet-18 at ImageNet size with IVON vs SGD vs AdamW in one program
// (issue #8): images/s on one synthetic ImageNet-shaped batch (generated once on the device
// and reused every step, so no data loading is measured), with optional bf16 autocast (fp32
// parameters and fp32 optimizer state) and channels-last. A forward+backward row without any
// optimizer is the ceiling. Goal: IVON >= 0.98x SGD (published Python IVON: 0.895x SGD,
// 10,725 vs 11,984 img/s on an H100).
//
// Every optimizer gets a fresh model and its warm-up; then `--rounds` rounds time `--steps`
// steps of each in turn (interleaved, so clock drift hits all alike), each timed between two
// device synchronisations. The median round is reported.
//
// With --learner, the same optimizers (SGD, IVON) also train through train::ContinualLearner
// (what kprior-run runs: its batches from an in-memory task on the device, its precision and
// memory-format options, its step), timed from the learner's own training seconds, to show
// what the library's training loop costs over the bare loop.
//
// Usage: bench_throughput [--device cpu|cuda] [--batch 256] [--size 224] [--steps 50]
//          [--warmup 15] [--rounds 3] [--bf16] [--channels-last] [--optimizers ivon,sgd,adamw]
//          [--threads N] [--classes 1000] [--learner]
// Smoke test on a CPU: bench_throughput --device cpu --size 32 --batch 8 --steps 2 --warmup 1
#include <fmt/core.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "kprior/core/allocator.h"
#include "kprior/core/threads.h"
#include "kprior/nn/memory_format.h"
#include "kprior/nn/precision.h"
#include "kprior/nn/resnet.h"
#include "kprior/optim/ivon.h"
#include "kprior/regularize/factory.h"
#include "kprior/train/continual_learner.h"

namespace {

struct Config {
  std::string device = torch::cuda::is_available() ? "cuda" : "cpu";
  int64_t batch = 256, size = 224, classes = 1000;
  int steps = 50, warmup = 15, rounds = 3, threads = 0;
  bool bf16 = false, channels_last = false, cudnn_benchmark = true, learner = false;
  std::vector<std::string> optimizers = {"sgd", "ivon", "adamw"};
};

[[noreturn]] void usage(const std::string& message) {
  fmt::print(stderr,
             "bench_throughput: {}\nusage: bench_throughput [--device cpu|cuda] [--batch N] "
             "[--size N] [--steps N] [--warmup N] [--rounds N] [--bf16] [--channels-last] "
             "[--optimizers ivon,sgd,adamw] [--threads N] [--classes N] [--no-cudnn-benchmark] [--learner]\n",
             message);
  std::exit(2);
}

Config parse(int argc, char** argv) {
  Config c;
  auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc) usage(std::string(argv[i]) + " needs a value");
    return argv[++i];
  };
  auto positive = [&](int& i) {
    const std::string name = argv[i], text = value(i);
    char* end = nullptr;
    const long v = std::strtol(text.c_str(), &end, 10);
    if (*end != '\0' || v < 0) usage(name + " needs a non-negative integer, got '" + text + "'");
    return static_cast<int>(v);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--device") c.device = value(i);
    else if (a == "--batch") c.batch = positive(i);
    else if (a == "--size") c.size = positive(i);
    else if (a == "--classes") c.classes = positive(i);
    else if (a == "--steps") c.steps = positive(i);
    else if (a == "--warmup") c.warmup = positive(i);
    else if (a == "--rounds") c.rounds = positive(i);
    else if (a == "--threads") c.threads = positive(i);
    else if (a == "--bf16") c.bf16 = true;
    else if (a == "--channels-last") c.channels_last = true;
    else if (a == "--no-cudnn-benchmark") c.cudnn_benchmark = false;
    else if (a == "--learner") c.learner = true;
    else if (a == "--optimizers") {
      c.optimizers.clear();
      std::stringstream list(value(i));
      for (std::string name; std::getline(list, name, ',');) {
        if (name != "ivon" && name != "sgd" && name != "adamw") {
          usage("unknown optimizer '" + name + "' (ivon, sgd, adamw)");
        }
        c.optimizers.push_back(name);
      }
    } else if (a == "--help" || a == "-h") {
      usage("ResNet-18 training throughput, IVON vs SGD vs AdamW");
    } else {
      usage("unknown option '" + a + "'");
    }
  }
  if (c.device != "cpu" && c.device != "cuda") usage("--device is cpu or cuda");
  if (c.device == "cuda" && !torch::cuda::is_available()) usage("CUDA is not available");
  if (c.batch < 1 || c.size < 32 || c.classes < 1 || c.steps < 1 || c.rounds < 1) {
    usage("--batch, --steps, --rounds, --classes must be >= 1 and --size >= 32");
  }
  return c;
}

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// One benchmarked configuration: a model, its optimizer (none for the ceiling) and its step.
struct Runner {
  std::string name;
  kprior::nn::ResNet18 model{nullptr};
  std::shared_ptr<torch::optim::Optimizer> optimizer;
  std::function<torch::Tensor()> step;  // returns the (detached) loss
  std::vector<double> ms_per_step;      // one per round
};

Runner make_runner(const std::string& name, const Config& cfg, const torch::Device& device,
                   const torch::Tensor& x, const torch::Tensor& y) {
  Runner r;
  r.name = name;
  torch::manual_seed(0);  // the same initial weights for every optimizer
  r.model = kprior::nn::ResNet18(kprior::nn::ResNetStem::ImageNet, cfg.classes);
  r.model->to(device);
  if (cfg.channels_last) kprior::nn::to_channels_last(*r.model);
  r.model->train();
  auto model = r.model.ptr();  // shared_ptr: callable from the const lambdas below
  const bool bf16 = cfg.bf16;
  const auto type = device.type();
  // Forward and loss under autocast; backward outside it, as torch.autocast recommends.
  auto loss_of = [model, x, y, bf16, type] {
    kprior::nn::AutocastScope autocast(bf16 ? kprior::nn::Precision::BFloat16 : kprior::nn::Precision::Float32, type);
    return torch::nn::functional::cross_entropy(model->forward(x), y);
  };
  if (name == "fwd+bwd") {
    r.step = [model, loss_of] {
      model->zero_grad(/*set_to_none=*/true);
      auto loss = loss_of();
      loss.backward();
      return loss.detach();
    };
  } else if (name == "ivon") {
    // The ImageNet recipe of Shen et al. (2024) (METHODS.md §1), one MC sample per step.
    auto opt = std::make_shared<kprior::optim::IVON>(
        model->parameters(), kprior::optim::IVONOptions(/*lr=*/2.5, /*ess=*/1281167.0)
                                 .hess_init(0.05)
                                 .beta2(0.999995)
                                 .weight_decay(5e-5));
    r.optimizer = opt;
    r.step = [opt, loss_of] {
      torch::Tensor loss;
      {
        auto sample = opt->sampled_params(/*train=*/true);
        loss = loss_of();
        loss.backward();
      }
      opt->step();
      return loss.detach();
    };
  } else {
    std::shared_ptr<torch::optim::Optimizer> opt;
    if (name == "sgd") {
      opt = std::make_shared<torch::optim::SGD>(
          model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-5));
    } else {
      opt = std::make_shared<torch::optim::AdamW>(
          model->parameters(), torch::optim::AdamWOptions(1e-3).weight_decay(0.05));
    }
    r.optimizer = opt;
    r.step = [opt, loss_of] {
      opt->zero_grad();
      auto loss = loss_of();
      loss.backward();
      opt->step();
      return loss.detach();
    };
  }
  return r;
}

// The learner's training time per step for `optimizer` (sgd or ivon): a warm-up task of one
// epoch, then a timed task of enough epochs over `batches` distinct batches for cfg.steps
// steps (seconds from the learner's TaskCost: training only, no boundary work, no
// evaluation; method finetune, so no regularizer).
double learner_ms_per_step(const std::string& optimizer, const Config& cfg, const torch::Device& device) {
  using namespace kprior;
  // Distinct batches per epoch: each epoch reads its mean loss back once and copies its order
  // to the device, as every epoch of a real run does (one of thousands of steps there).
  const int64_t batches = std::clamp<int64_t>(cfg.steps, 4, 16);
  torch::manual_seed(2);
  auto make_task = [&](int64_t id) {
    data::Task t;
    t.id = id;
    t.name = "synthetic-" + std::to_string(id);
    for (int64_t c = 0; c < cfg.classes; ++c) t.classes.push_back(c);
    const auto opts = torch::TensorOptions().device(device);
    t.train = {torch::randn({batches * cfg.batch, 3, cfg.size, cfg.size}, opts),
               torch::randint(0, cfg.classes, {batches * cfg.batch}, opts.dtype(torch::kLong))};
    t.test = {t.train.inputs.slice(0, 0, 1), t.train.targets.slice(0, 0, 1)};
    return t;
  };
  auto model = nn::ResNet18(nn::ResNetStem::ImageNet, cfg.classes);
  model->to(device);
  const auto kind = optimizer == "ivon" ? train::OptimizerKind::IVON : train::OptimizerKind::SGD;
  auto options = train::LearnerOptions()
                     .optimizer(kind)
                     .lr(kind == train::OptimizerKind::IVON ? 0.1 : 0.01)
                     .batch_size(cfg.batch)
                     .memory_per_task(0)
                     .precision(cfg.bf16 ? nn::Precision::BFloat16 : nn::Precision::Float32)
                     .memory_format(cfg.channels_last ? nn::MemoryFormat::ChannelsLast : nn::MemoryFormat::Contiguous);
  train::ContinualLearner warm(model.ptr(), regularize::make_regularizers("finetune", {}), options.epochs(1));
  warm.observe(make_task(0));
  const int64_t epochs = std::max<int64_t>(1, (cfg.steps + batches - 1) / batches);
  train::ContinualLearner learner(model.ptr(), regularize::make_regularizers("finetune", {}), options.epochs(epochs));
  learner.observe(make_task(0));
  return 1000.0 * learner.costs().back().train_seconds / static_cast<double>(epochs * batches);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const Config cfg = parse(argc, argv);
  const torch::Device device(cfg.device);
  const int threads = kprior::set_threads(cfg.threads);
  kprior::reuse_large_allocations();  // as kprior-run does: no page-fault churn on the CPU
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(cfg.cudnn_benchmark);

  // One synthetic batch, made once on the device: inputs ~ N(0, 1), labels uniform.
  torch::manual_seed(1);
  auto x = torch::randn({cfg.batch, 3, cfg.size, cfg.size}, torch::TensorOptions().device(device));
  if (cfg.channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  const auto y =
      torch::randint(0, cfg.classes, {cfg.batch}, torch::TensorOptions(torch::kLong).device(device));

  fmt::print("bench_throughput: ResNet-18 (ImageNet stem, {} classes), batch {}, {}x{}, {}{}{}, "
             "LibTorch {}, {} CPU threads\n",
             cfg.classes, cfg.batch, cfg.size, cfg.size, cfg.device,
             cfg.bf16 ? ", bf16 autocast" : ", fp32", cfg.channels_last ? ", channels-last" : "",
             TORCH_VERSION, threads);
  fmt::print("warm-up {} steps each, then {} rounds of {} timed steps, interleaved\n", cfg.warmup,
             cfg.rounds, cfg.steps);

  std::vector<Runner> runners;
  runners.push_back(make_runner("fwd+bwd", cfg, device, x, y));
  for (const auto& name : cfg.optimizers) runners.push_back(make_runner(name, cfg, device, x, y));

  using Clock = std::chrono::steady_clock;
  for (auto& r : runners) {
    for (int i = 0; i < cfg.warmup; ++i) r.step();
  }
  synchronize(device);
  std::vector<double> last_loss(runners.size());
  for (int round = 0; round < cfg.rounds; ++round) {
    for (size_t k = 0; k < runners.size(); ++k) {
      auto& r = runners[k];
      synchronize(device);
      const auto start = Clock::now();
      torch::Tensor loss;
      for (int i = 0; i < cfg.steps; ++i) loss = r.step();
      synchronize(device);
      r.ms_per_step.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count() /
                              cfg.steps);
      last_loss[k] = loss.item<double>();
    }
  }

  double sgd_ms = 0;
  for (const auto& r : runners) {
    if (r.name == "sgd") sgd_ms = median(r.ms_per_step);
  }
  fmt::print("\n{:<9} {:>10} {:>9} {:>8} {:>8} {:>11}\n", "optimizer", "img/s", "ms/step", "vs SGD",
             "spread", "last loss");
  for (size_t k = 0; k < runners.size(); ++k) {
    const auto& r = runners[k];
    const double ms = median(r.ms_per_step);
    const double spread = (*std::max_element(r.ms_per_step.begin(), r.ms_per_step.end()) -
                           *std::min_element(r.ms_per_step.begin(), r.ms_per_step.end())) / ms;
    const std::string ratio = sgd_ms > 0 ? fmt::format("{:.3f}x", sgd_ms / ms) : "-";
    fmt::print("{:<9} {:>10.1f} {:>9.2f} {:>8} {:>7.1f}% {:>11.4g}\n", r.name,
               1000.0 * cfg.batch / ms, ms, ratio, 100.0 * spread, last_loss[k]);
  }
  std::vector<std::pair<std::string, double>> learner_rows;
  if (cfg.learner) {
    fmt::print("\nthrough train::ContinualLearner (kprior-run's loop), {} steps each:\n", cfg.steps);
    fmt::print("{:<14} {:>10} {:>9} {:>16}\n", "optimizer", "img/s", "ms/step", "vs bare loop");
    for (const std::string name : {"sgd", "ivon"}) {
      double bare = 0;
      for (const auto& r : runners) {
        if (r.name == name) bare = median(r.ms_per_step);
      }
      const double ms = learner_ms_per_step(name, cfg, device);
      learner_rows.emplace_back(name, ms);
      fmt::print("{:<14} {:>10.1f} {:>9.2f} {:>16}\n", "learner-" + name, 1000.0 * cfg.batch / ms, ms,
                 bare > 0 ? fmt::format("{:.3f}x", bare / ms) : "-");
    }
  }
  // Machine-readable lines (one per row) for scripts.
  for (const auto& r : runners) {
    const double ms = median(r.ms_per_step);
    fmt::print("RESULT bench=throughput optimizer={} img_per_s={:.1f} ms_per_step={:.3f} "
               "ratio_to_sgd={:.4f} device={} batch={} size={} bf16={} channels_last={} steps={} "
               "rounds={}\n",
               r.name, 1000.0 * cfg.batch / ms, ms, sgd_ms > 0 ? sgd_ms / ms : 0.0, cfg.device,
               cfg.batch, cfg.size, cfg.bf16 ? 1 : 0, cfg.channels_last ? 1 : 0, cfg.steps,
               cfg.rounds);
  }
  for (const auto& [name, ms] : learner_rows) {
    fmt::print("RESULT bench=throughput optimizer=learner-{} img_per_s={:.1f} ms_per_step={:.3f} "
               "ratio_to_sgd={:.4f} device={} batch={} size={} bf16={} channels_last={} steps={}\n",
               name, 1000.0 * cfg.batch / ms, ms, sgd_ms > 0 ? sgd_ms / ms : 0.0, cfg.device, cfg.batch,
               cfg.size, cfg.bf16 ? 1 : 0, cfg.channels_last ? 1 : 0, cfg.steps);
  }
  return 0;
}
