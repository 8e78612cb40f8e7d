#include "kprior/influence/sensitivity.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "kprior/core/error.h"
#include "kprior/linearize/linearize.h"

namespace kprior::influence {
namespace {

// −log softmax(f)_y per row.
torch::Tensor nll_of(const torch::Tensor& logits, const torch::Tensor& y) {
  return -torch::log_softmax(logits, 1).gather(1, y.unsqueeze(1)).squeeze(1);
}

Sensitivities one_batch(nn::TapedModule& model, const torch::Tensor& x, const torch::Tensor& y,
                        const std::vector<int64_t>& columns,
                        const std::vector<torch::Tensor>& variances, Form form) {
  Sensitivities s;
  {
    // Eval mode as the linearization engine's Jacobians: e_i and V_i of the same function.
    nn::EvalModeGuard eval_mode(model);
    torch::NoGradGuard no_grad;
    s.logits = linearize::head_logits(model.forward(x), columns);
  }
  const auto p = torch::softmax(s.logits, 1);
  s.residual = p - torch::one_hot(y, p.size(1)).to(p.dtype());
  torch::Tensor v, lambda;
  if (form == Form::Diagonal) {
    v = linearize::logit_variance(model, x, columns, variances);
    s.variance = v;
  } else {
    v = linearize::logit_covariance(model, x, columns, variances);
    s.variance = torch::diagonal(v, 0, 1, 2).contiguous();
    if (form == Form::GLM) lambda = linearize::softmax_hessian(p);
  }
  s.deviation = deviation(form, v, s.residual, lambda);
  if (form == Form::GLM) s.glm_invalid = glm_downdate_invalid(v, lambda);
  s.nll = nll_of(s.logits, y);
  s.loo_nll = nll_of(s.logits + s.deviation, y);
  return s;
}

void check_inputs(const torch::Tensor& x, const torch::Tensor& targets,
                  const std::vector<int64_t>& columns, int64_t batch_size) {
  if (columns.empty()) throw UsageError("sensitivities: no output columns given");
  if (batch_size <= 0) throw UsageError("sensitivities: batch size must be > 0");
  if (x.dim() < 2 || x.size(0) == 0) throw UsageError("sensitivities: no examples given");
  if (!targets.defined() || targets.dim() != 1 || targets.size(0) != x.size(0)) {
    throw UsageError("sensitivities: one target per input expected");
  }
  if (targets.numel() > 0) {
    const auto lo = targets.min().item<int64_t>(), hi = targets.max().item<int64_t>();
    if (lo < 0 || hi >= static_cast<int64_t>(columns.size())) {
      throw UsageError("sensitivities: targets must be positions in the head (0.." +
                       std::to_string(columns.size() - 1) + ")");
    }
  }
}

}  // namespace

Sensitivities sensitivities(nn::TapedModule& model, const torch::Tensor& x,
                            const torch::Tensor& targets, const std::vector<int64_t>& columns,
                            const std::vector<torch::Tensor>& variances, Form form,
                            int64_t batch_size) {
  check_inputs(x, targets, columns, batch_size);
  const auto y = targets.to(torch::kLong).to(x.device());
  std::vector<Sensitivities> parts;
  for (int64_t start = 0; start < x.size(0); start += batch_size) {
    const auto stop = std::min(x.size(0), start + batch_size);
    parts.push_back(one_batch(model, x.slice(0, start, stop), y.slice(0, start, stop), columns,
                              variances, form));
  }
  if (parts.size() == 1) return parts[0];
  auto cat = [&](torch::Tensor Sensitivities::*field) {
    std::vector<torch::Tensor> v;
    for (const auto& p : parts) v.push_back(p.*field);
    return torch::cat(v, 0);
  };
  Sensitivities s;
  s.logits = cat(&Sensitivities::logits);
  s.residual = cat(&Sensitivities::residual);
  s.variance = cat(&Sensitivities::variance);
  s.deviation = cat(&Sensitivities::deviation);
  s.nll = cat(&Sensitivities::nll);
  s.loo_nll = cat(&Sensitivities::loo_nll);
  if (form == Form::GLM) s.glm_invalid = cat(&Sensitivities::glm_invalid);
  return s;
}

double loo_nll_estimate(const Sensitivities& s) {
  if (s.loo_nll.numel() == 0) throw UsageError("loo_nll_estimate: no examples");
  const auto loo = s.loo_nll.to(torch::kFloat64);
  const auto estimated = loo.masked_select(torch::isfinite(loo));
  return estimated.numel() > 0 ? estimated.mean().item<double>() : std::nan("");
}

int64_t without_estimate(const Sensitivities& s) {
  return s.loo_nll.numel() - torch::isfinite(s.loo_nll).sum().item<int64_t>();
}

torch::Tensor self_influence(const Sensitivities& s) { return s.loo_nll - s.nll; }

std::vector<int64_t> top_influential(const Sensitivities& s, int64_t k) {
  const auto score = self_influence(s).to(torch::kFloat64).cpu().contiguous();
  const double* sp = score.data_ptr<double>();
  std::vector<int64_t> order(static_cast<size_t>(score.numel()));
  std::iota(order.begin(), order.end(), 0);
  // stable: equal scores keep index order, so the selection is deterministic; an example
  // without an estimate (NaN: a failed GLM solve) ranks last.
  const auto key = [sp](int64_t i) { return std::isnan(sp[i]) ? -std::numeric_limits<double>::infinity() : sp[i]; };
  std::stable_sort(order.begin(), order.end(), [&key](int64_t a, int64_t b) { return key(a) > key(b); });
  order.resize(static_cast<size_t>(std::clamp<int64_t>(k, 0, score.numel())));
  return order;
}

torch::Tensor perturbed_probabilities(const Sensitivities& s) {
  return torch::softmax(s.logits + s.deviation, 1);
}

torch::Tensor linearized_softmax_l1(const Sensitivities& s) {
  const auto p = torch::softmax(s.logits.to(torch::kFloat64), 1);
  return (p * (1 - p) * s.residual.to(torch::kFloat64) * s.variance.to(torch::kFloat64)).abs().sum(1);
}

}  // namespace kprior::influence
