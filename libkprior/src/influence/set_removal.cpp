#include "kprior/influence/set_removal.h"

#include <torch/torch.h>

#include <algorithm>

#include "kprior/core/error.h"
#include "kprior/linearize/linearize.h"
#include "kprior/train/map_fit.h"

namespace kprior::influence {
namespace {

void check_set(const torch::Tensor& x, const torch::Tensor& targets,
               const std::vector<int64_t>& indices) {
  if (indices.empty()) throw UsageError("remove_set: the set to remove is empty");
  if (!targets.defined() || targets.dim() != 1 || targets.size(0) != x.size(0)) {
    throw UsageError("remove_set: one target per input expected");
  }
  for (const auto i : indices) {
    if (i < 0 || i >= x.size(0)) {
      throw UsageError("remove_set: index " + std::to_string(i) + " is outside 0.." +
                       std::to_string(x.size(0) - 1));
    }
  }
  // An example is removed once: a repeated index would take its curvature and gradient twice.
  auto sorted = indices;
  std::sort(sorted.begin(), sorted.end());
  if (const auto dup = std::adjacent_find(sorted.begin(), sorted.end()); dup != sorted.end()) {
    throw UsageError("remove_set: index " + std::to_string(*dup) + " is given twice");
  }
}

}  // namespace

std::vector<torch::Tensor> summed_loss_gradient(nn::TapedModule& model, const torch::Tensor& x,
                                                const torch::Tensor& targets,
                                                const std::vector<int64_t>& columns,
                                                int64_t batch_size) {
  if (batch_size <= 0) throw UsageError("summed_loss_gradient: batch size must be > 0");
  const auto params = model.parameters();
  std::vector<torch::Tensor> total;
  for (const auto& p : params) total.push_back(torch::zeros_like(p).detach());
  const auto y = targets.to(torch::kLong).to(x.device());
  nn::EvalModeGuard eval_mode(model);  // the function the Jacobians and curvature linearize
  torch::AutoGradMode grad_on(true);
  for (int64_t start = 0; start < x.size(0); start += batch_size) {
    const auto stop = std::min(x.size(0), start + batch_size);
    const auto logits = linearize::head_logits(model.forward(x.slice(0, start, stop)), columns);
    const auto loss = torch::nn::functional::cross_entropy(
        logits, y.slice(0, start, stop),
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    const auto g = torch::autograd::grad({loss}, params, {}, false, false, /*allow_unused=*/true);
    for (size_t k = 0; k < params.size(); ++k) {
      if (g[k].defined()) total[k] += g[k];
    }
  }
  return total;
}

SetRemoval remove_set(nn::TapedModule& model, const torch::Tensor& x, const torch::Tensor& targets,
                      const std::vector<int64_t>& columns, const posterior::DiagonalGaussian& posterior,
                      const std::vector<int64_t>& indices, double precision_floor,
                      int64_t batch_size) {
  check_set(x, targets, indices);
  const auto params = model.parameters();
  if (posterior.num_tensors() != params.size()) {
    throw UsageError("remove_set: the posterior has " + std::to_string(posterior.num_tensors()) +
                     " tensors for " + std::to_string(params.size()) + " parameters");
  }
  if (!(precision_floor > 0)) throw UsageError("remove_set: the precision floor must be > 0");
  const auto idx = torch::tensor(indices, torch::kLong).to(x.device());
  const auto xs = x.index_select(0, idx);
  const auto ys = targets.to(x.device()).index_select(0, idx);
  // Curvature and gradient of the removed examples' summed loss at m.
  const auto ggn = linearize::curvature_diagonal(model, xs, ys, columns,
                                                 linearize::Curvature::GGN, batch_size);
  const auto grad = summed_loss_gradient(model, xs, ys, columns, batch_size);
  SetRemoval r;
  r.removed = static_cast<int64_t>(indices.size());
  for (size_t k = 0; k < params.size(); ++k) {
    const auto& var = posterior.variance()[k];
    if (!var.sizes().equals(params[k].sizes())) {
      throw UsageError("remove_set: posterior tensor " + std::to_string(k) + " has the wrong shape");
    }
    // In float64: 1/σ² and the GGN are large and close for well-determined weights, and their
    // float32 difference could fall below the floor by rounding alone.
    auto precision = 1.0 / var.to(torch::kFloat64) - ggn[k].to(torch::kFloat64);
    r.clamped += (precision < precision_floor).sum().item<int64_t>();
    precision = precision.clamp_min(precision_floor);
    r.variance.push_back((1.0 / precision).to(params[k].dtype()));
    // Removing S takes Σ_S ℓ_i out of the objective; with the full objective's gradient zero at
    // m, the gradient of what remains is −Σ_S ∇ℓ_i(m), and the Newton step −Σ^{∖S}·(that
    // gradient) is the shift +Σ^{∖S} Σ_S ∇ℓ_i(m).
    r.mean_shift.push_back((grad[k].to(torch::kFloat64) / precision).to(params[k].dtype()));
  }
  return r;
}

torch::Tensor logits_after(nn::TapedModule& model, const torch::Tensor& x,
                           const std::vector<int64_t>& columns, const SetRemoval& removal) {
  torch::Tensor f;
  {
    nn::EvalModeGuard eval_mode(model);  // as jacobian_vector_product's
    torch::NoGradGuard no_grad;
    f = linearize::head_logits(model.forward(x), columns);
  }
  return f + linearize::jacobian_vector_product(model, x, columns, removal.mean_shift);
}

SetEffect estimate_set_effect(nn::TapedModule& model, const data::Dataset& train,
                              const data::Dataset& test, const std::vector<int64_t>& columns,
                              const posterior::DiagonalGaussian& posterior,
                              const std::vector<int64_t>& indices, double precision_floor) {
  const auto removal = remove_set(model, train.inputs, train.targets, columns, posterior, indices,
                                  precision_floor);
  const auto idx = torch::tensor(indices, torch::kLong).to(train.inputs.device());
  SetEffect e;
  e.clamped = removal.clamped;
  e.removed_nll = train::quality_of(
      logits_after(model, train.inputs.index_select(0, idx), columns, removal),
      train.targets.index_select(0, idx)).nll;
  if (test.size() > 0) {
    const auto q = train::quality_of(logits_after(model, test.inputs, columns, removal), test.targets);
    e.test_nll = q.nll;
    e.test_accuracy = q.accuracy;
  }
  return e;
}

}  // namespace kprior::influence
