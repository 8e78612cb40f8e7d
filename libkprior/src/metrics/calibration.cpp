#include "kprior/metrics/calibration.h"

#include <torch/torch.h>

#include <cmath>

#include "kprior/core/error.h"

namespace kprior::metrics {
namespace {
void check(const torch::Tensor& probs, const torch::Tensor& targets) {
  if (probs.dim() != 2 || targets.dim() != 1 || probs.size(0) != targets.size(0) || probs.size(0) == 0) {
    throw UsageError("metrics: probs must be [N, C] and targets [N], N > 0");
  }
}
}  // namespace

double nll(const torch::Tensor& probs, const torch::Tensor& targets) {
  check(probs, targets);
  const auto p = probs.to(torch::kFloat64).gather(1, targets.to(torch::kLong).unsqueeze(1));
  return -p.clamp_min(1e-300).log().mean().item<double>();
}

double ece(const torch::Tensor& probs, const torch::Tensor& targets, int64_t bins) {
  check(probs, targets);
  if (bins <= 0) throw UsageError("ece: bins must be > 0");
  const auto p = probs.to(torch::kFloat64).cpu();
  const auto [conf, pred] = p.max(1);
  const auto correct = pred.eq(targets.to(torch::kLong).cpu()).to(torch::kFloat64);
  const double n = static_cast<double>(p.size(0));
  double total = 0;
  for (int64_t b = 0; b < bins; ++b) {
    const double lo = static_cast<double>(b) / bins, hi = static_cast<double>(b + 1) / bins;
    // Bins are (lo, hi]; the first also takes confidence exactly 0 (never happens for softmax).
    const auto in = (b == 0 ? conf.ge(lo) : conf.gt(lo)).logical_and(conf.le(hi));
    const double count = in.sum().item<double>();
    if (count == 0) continue;
    const double acc = correct.masked_select(in).mean().item<double>();
    const double avg = conf.masked_select(in).mean().item<double>();
    total += count / n * std::abs(acc - avg);
  }
  return total;
}

double brier(const torch::Tensor& probs, const torch::Tensor& targets) {
  check(probs, targets);
  const auto p = probs.to(torch::kFloat64);
  const auto y = torch::one_hot(targets.to(torch::kLong), p.size(1)).to(torch::kFloat64);
  return (p - y).square().sum(1).mean().item<double>();
}

}  // namespace kprior::metrics
