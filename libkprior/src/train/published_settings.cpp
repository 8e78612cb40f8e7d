#include "kprior/train/published_settings.h"

#include "kprior/core/error.h"
#include "kprior/data/benchmarks.h"

namespace kprior::train {

PublishedSettings published_settings(const std::string& benchmark) {
  if (benchmark == "split-mnist" || benchmark == "split-fashion") {
    return {{256, 256}, 1e-4, 15, 128, 10.0, 1e-6, 1e-3, 0.1 * 10.0, 40, "mlp"};
  }
  if (benchmark == "permuted-mnist") {
    return {{100, 100}, 1e-3, 10, 128, 0.5, 1e-5, 1e-5, 0.01 * 0.5, 200, "mlp"};
  }
  if (benchmark == "split-cifar" || benchmark == "split-cifar100") {
    // The published code's run (FROMP, train_cifar.py): prior precision 1e-4, kernel jitter
    // 1e-6, gradient clip 100 on ∇ℓ/τ + ∇penalty, i.e. 100·τ on our ∇(ℓ + τ·penalty).
    // hidden: for --model mlp, which the published run does not use (as split-h5's).
    return {{256, 256}, 1e-3, 80, 256, 10.0, 1e-6, 1e-4, 100.0 * 10.0, 200, "cifarnet"};
  }
  if (benchmark == "split-tinyimagenet") return {{256, 256}, 1e-3, 30, 256, 10.0, 1e-6, 1e-3, 0.0, 200, "resnet18"};
  if (benchmark == "split-imagenet") return {{256, 256}, 1e-3, 10, 256, 10.0, 1e-6, 1e-3, 0.0, 200, "resnet18"};
  if (benchmark == "split-h5") return {{256, 256}, 1e-3, 10, 128, 10.0, 1e-6, 1e-3, 0.0, 40, "mlp"};
  data::throw_unknown_benchmark(benchmark);
}

IvonSettings ivon_settings(const std::string& benchmark, bool with_fromp) {
  const auto pub = published_settings(benchmark);
  IvonSettings s{};
  // h0 sets the first posterior's spread σ = 1/sqrt(N (h0 + δ)); with β2 = 0.99999, h stays
  // near h0 over a task. Measured on split-MNIST (3 seeds): FROMP 98.36 ± 0.21% at h0 = 10,
  // 98.67 ± 0.10% at 100; ivon-prior, whose prior precision is ess (h + δ), 94.1% at h0 = 1 but
  // 59.3% at h0 = 100 (it cannot learn new tasks). So 100 with FROMP and 1 otherwise.
  s.hess_init = with_fromp ? 100.0 : 1.0;
  // The published τ is tuned for Adam, whose steps are bounded by the learning rate; IVON's
  // Newton-like steps overshoot against so stiff a term (split-MNIST diverges at τ ≥ 0.05).
  // Measured on split-MNIST, 3 seeds, h0 = 100: τ 0.002 → 98.68 ± 0.08%, 0.003 → 98.67 ±
  // 0.10%, 0.005 → 95.5 ± 5.1% (unstable): the published τ × 2e-4.
  s.tau_scale = 2e-4;
  // The penalty is evaluated at sampled weights, where m(θ) − m̄ carries the sampling noise;
  // kernel directions far below that noise blow it up. Measured on split-MNIST (seed 0):
  // ε = 1e-6 → 50%, 1e-3 → 65%, 1e-2 → 98% average accuracy.
  s.jitter = 1e-2;
  s.batch_size = pub.batch_size;
  s.epochs = pub.epochs;
  // IVON is trained with a cosine decay of its learning rate (Shen et al., ICML 2024); here it
  // restarts at every task. Measured, 3 seeds (0-2), constant → cosine: split-MNIST FROMP (batch
  // 8) 98.59 → 98.73 (seeds 0-9: 98.65 → 98.73; Adam 98.74), ivon-prior 94.09 → 95.51,
  // finetune 91.37 → 93.29; split-Fashion FROMP 95.97 ± 2.26 → 98.66 ± 0.29. But permuted-MNIST
  // FROMP (10 tasks, one head), seeds 0 and 1: 90.31 and 90.84 constant, 89.24 and 89.68
  // cosine: it keeps the constant rate. The image benchmarks (not measured) take the cosine
  // schedule; their other IVON settings are the ones above, kprior-run's lr 0.1 and the
  // published package's defaults (δ 1e-4, β2 0.99999), not IVON's single-task CIFAR or
  // ImageNet recipes.
  s.lr_schedule = benchmark == "permuted-mnist" ? LrSchedule::Constant : LrSchedule::Cosine;
  if (with_fromp && benchmark == "split-mnist") {
    // Many small noisy steps: FROMP with IVON on split-MNIST, tuned on seeds 10-14 and checked
    // on seeds 0-2 and 20-24 (5 tasks; Adam with the published settings on the same seeds in
    // brackets): batch 128 × 15 epochs 98.40 ± 0.2% (98.69), batch 32 98.5, batch 16 98.62,
    // batch 8 × 10 epochs 98.70 ± 0.17 (98.69), 98.64 ± 0.17 on seeds 0-2 (98.67) and
    // 98.79 ± 0.13 on seeds 20-24 (98.62), all on 1 thread; on 2 threads, seeds 0-9,
    // 98.65 ± 0.12 (98.74 ± 0.13), all with a constant learning rate. With the cosine
    // schedule: 98.73 ± 0.16 on seeds 0-2 (Adam 98.67 ± 0.19), 98.73 on seeds 0-9 (98.74),
    // 98.70 ± 0.04 on seeds 10-14 (98.69); there, batch 32 × 15 epochs 98.66 ± 0.18, batch 8 ×
    // 15 epochs 98.67, lr 0.2 98.68. It costs ~5-10× Adam's training time (10,000 steps of
    // batch 8 instead of 1,000 of 128).
    s.batch_size = 8;
    s.epochs = 10;
  }
  return s;
}

}  // namespace kprior::train
