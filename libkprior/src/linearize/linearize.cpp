#include "kprior/linearize/linearize.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <string>

#include "kprior/core/error.h"
#include "kprior/linearize/signals.h"
#include "layer_math.h"

namespace kprior::linearize {
namespace {

// Where each tape entry's weight and bias sit in model.parameters().
struct Layout {
  std::vector<torch::Tensor> params;
  std::vector<std::pair<int64_t, int64_t>> layer_params;  // (weight index, bias index or -1)
};

Layout layout_of(nn::TapedModule& model, const std::vector<nn::TapeEntry>& layers) {
  Layout l;
  l.params = model.parameters();
  std::map<const void*, int64_t> index;
  for (size_t i = 0; i < l.params.size(); ++i) index[l.params[i].unsafeGetTensorImpl()] = static_cast<int64_t>(i);
  std::vector<int> used(l.params.size(), 0);
  auto find = [&](const torch::Tensor& t) -> int64_t {
    if (!t.defined()) return -1;
    auto it = index.find(t.unsafeGetTensorImpl());
    if (it == index.end()) throw UsageError("linearize: a taped layer's parameter is not a model parameter");
    if (++used[static_cast<size_t>(it->second)] > 1) {
      throw UsageError("linearize: a layer is applied twice in one forward (shared weights are not supported)");
    }
    return it->second;
  };
  for (const auto& e : layers) l.layer_params.emplace_back(find(e.weight), find(e.bias));
  for (size_t i = 0; i < used.size(); ++i) {
    if (used[i] == 0) {
      throw UsageError("linearize: parameter " + std::to_string(i) +
                       " of the model is not in a taped Linear/Conv2d/BatchNorm2d layer");
    }
  }
  return l;
}

void check_variances(const Layout& l, const std::vector<torch::Tensor>& variances) {
  if (variances.size() != l.params.size()) {
    throw UsageError("linearize: " + std::to_string(variances.size()) + " variance tensors for " +
                     std::to_string(l.params.size()) + " parameters (align them with parameters())");
  }
  for (size_t i = 0; i < variances.size(); ++i) {
    if (!variances[i].sizes().equals(l.params[i].sizes())) {
      throw UsageError("linearize: variance " + std::to_string(i) + " has the wrong shape");
    }
  }
}

// The (weight, bias) variances of layer `k`, in the signals' dtype.
std::pair<torch::Tensor, torch::Tensor> layer_vars(const Layout& l, size_t k,
                                                   const std::vector<torch::Tensor>& variances,
                                                   const torch::Tensor& like) {
  const auto [wi, bi] = l.layer_params[k];
  auto vw = variances[static_cast<size_t>(wi)].to(like.options());
  torch::Tensor vb;
  if (bi >= 0) vb = variances[static_cast<size_t>(bi)].to(like.options());
  return {vw, vb};
}

// Σ over taped layers k of form(k, σ²_weight, σ²_bias): the shared shape of every
// variance and kernel computation.
template <typename Form>
torch::Tensor sum_layers(const Layout& l, const Signals& s, const std::vector<torch::Tensor>& variances,
                         Form&& form) {
  check_variances(l, variances);
  torch::Tensor total;
  for (size_t k = 0; k < s.layers.size(); ++k) {
    auto [vw, vb] = layer_vars(l, k, variances, s.t[k]);
    auto part = form(k, vw, vb);
    total = total.defined() ? total + part : part;
  }
  return total;
}

// Cotangents [N, R, C_out] placing rows [N, R, C] (over the head) into the full output.
CotangentFn head_rows(const std::vector<int64_t>& columns,
                      const std::function<torch::Tensor(const torch::Tensor&)>& rows_of_head) {
  return [columns, rows_of_head](const torch::Tensor& logits) {
    const auto rows = rows_of_head(head_logits(logits, columns));
    auto cot = torch::zeros({logits.size(0), rows.size(1), logits.size(1)}, logits.options());
    cot.index_copy_(2, torch::tensor(columns, torch::kLong).to(logits.device()), rows);
    return cot;
  };
}

// Rows of Λ as cotangents: row c is the gradient direction of the probability p_c, so
// quadratic forms of these signals are those of Λ J Σ Jᵀ Λ.
CotangentFn lambda_rows(const std::vector<int64_t>& columns) {
  return head_rows(columns, [](const torch::Tensor& f) { return softmax_hessian(torch::softmax(f, 1)); });
}

void check_columns(const std::vector<int64_t>& columns) {
  if (columns.empty()) throw UsageError("linearize: no output columns given");
}

// Per-example results are computed at most kBatch inputs at a time, and fewer when one
// input's signals are large (ResNet-18 at 224x224: ~2.5 M floats per output direction), so
// that a batch's signals stay within kBatchFloats: memory does not grow with N.
constexpr int64_t kBatch = 512;
constexpr int64_t kBatchFloats = int64_t{1} << 28;  // 1 GiB of float32

int64_t batch_for(nn::TapedModule& model, const torch::Tensor& x, int64_t rows) {
  const int64_t per_example = signal_floats_per_example(model, x, rows);
  return std::clamp<int64_t>(kBatchFloats / std::max<int64_t>(1, per_example), 1, kBatch);
}

torch::Tensor in_batches(const torch::Tensor& x, int64_t batch,
                         const std::function<torch::Tensor(const torch::Tensor&)>& fn) {
  if (x.size(0) <= batch) return fn(x);
  std::vector<torch::Tensor> parts;
  for (int64_t s = 0; s < x.size(0); s += batch) parts.push_back(fn(x.slice(0, s, s + batch)));
  return torch::cat(parts, 0);
}

}  // namespace


namespace {

// Floats of one input's taped forward pass: layer outputs, layer inputs as recorded, and layer
// inputs as unfolded for the per-example convolution gradients (kernel area × input).
struct TapeFloats {
  int64_t outputs = 0, inputs = 0, unfolded = 0;
  // Per output row padded to SIMD lanes (up to 8): the buffers of signals derived through a
  // pooled convolution (pooled_conv_input_signals: its zero-padded input and its winners).
  int64_t chained = 0;
};

// rows + 7 bounds the rows rounded up to 8 lanes and keeps the estimates linear in the rows
// (rows_that_fit relies on it).
int64_t lanes(int64_t rows) { return std::max<int64_t>(1, rows) + 7; }

TapeFloats tape_floats(nn::TapedModule& model, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  nn::EvalModeGuard eval_mode(model);
  nn::LayerTape tape;
  model.forward_taped(x.slice(0, 0, 1), &tape);
  TapeFloats f;
  for (const auto& e : tape.entries()) {
    f.outputs += e.output.numel();
    f.inputs += e.input.numel();
    // A pooled convolution's winners (int64: two floats each) and slopes.
    if (e.pooled()) f.inputs += 2 * e.pool_index.numel() + e.pool_slope.numel();
    if (e.pooled() && e.input_from_previous) {
      f.chained += e.input.size(1) * (e.input.size(2) + 2 * e.padding[0]) * (e.input.size(3) + 2 * e.padding[1]) +
                   e.pool_index.numel();
    }
    const int64_t area = e.kind == nn::LayerKind::Conv2d
                             ? std::accumulate(e.kernel_size.begin(), e.kernel_size.end(), int64_t{1}, std::multiplies<>())
                             : 1;
    f.unfolded += e.input.numel() * area;
  }
  return f;
}

}  // namespace

int64_t signal_floats_per_example(nn::TapedModule& model, const torch::Tensor& x, int64_t rows) {
  if (x.dim() < 1 || x.size(0) == 0) return 0;
  const auto f = tape_floats(model, x);
  return std::max<int64_t>(1, rows) * f.outputs + f.unfolded + lanes(rows) * f.chained;
}

int64_t kernel_floats(nn::TapedModule& model, const torch::Tensor& x, int64_t n, int64_t rows) {
  if (x.dim() < 1 || x.size(0) == 0) return 0;
  int64_t widest = 0;  // the largest per-example gradient a kernel forms for one layer
  for (const auto& p : model.parameters()) widest = std::max<int64_t>(widest, p.numel());
  const auto f = tape_floats(model, x);
  // Every input's signals and recorded layer inputs, and one layer's per-example gradients
  // twice (its chunks and their concatenation); the unfolded inputs only for a bounded chunk
  // of examples at a time (layer_math.cpp).
  return n * (std::max<int64_t>(1, rows) * (f.outputs + 2 * widest) + f.inputs + lanes(rows) * f.chained);
}

namespace {

// kernel_floats is linear in n, so the message can say how many inputs would fit.
UsageError kernel_too_large(int64_t n, int64_t rows, int64_t floats, int64_t limit, int64_t element_size) {
  const auto gib = [&](int64_t f) {
    return std::to_string(static_cast<int64_t>(std::ceil(static_cast<double>(f) * static_cast<double>(element_size) / (1 << 30))));
  };
  const int64_t fit = n > 0 ? limit / std::max<int64_t>(1, floats / n) : 0;
  return UsageError("linearize: kernels over " + std::to_string(n) + " inputs and " + std::to_string(rows) +
                    " output row(s) would hold about " + gib(floats) + " GiB of layer signals and per-example "
                    "gradients (limit " + gib(limit) + " GiB, about " + std::to_string(fit) +
                    " inputs); use fewer memorable points per task or a smaller model");
}

}  // namespace

void check_kernel_memory(nn::TapedModule& model, const torch::Tensor& x, int64_t n, int64_t rows) {
  const int64_t floats = kernel_floats(model, x, n, rows);
  if (floats > kKernelFloats) throw kernel_too_large(n, rows, floats, kKernelFloats, x.element_size());
}

int64_t max_kernel_inputs(nn::TapedModule& model, const torch::Tensor& x, int64_t rows) {
  const int64_t per_input = kernel_floats(model, x.slice(0, 0, 1), 1, rows);
  return per_input > 0 ? kKernelFloats / per_input : 0;
}

torch::Tensor head_logits(const torch::Tensor& logits, const std::vector<int64_t>& columns) {
  return logits.index_select(1, torch::tensor(columns, torch::kLong).to(logits.device()));
}

torch::Tensor softmax_hessian(const torch::Tensor& p) {
  return torch::diag_embed(p) - p.unsqueeze(2) * p.unsqueeze(1);
}

torch::Tensor head_probabilities(nn::TapedModule& model, const torch::Tensor& x,
                                 const std::vector<int64_t>& columns) {
  check_columns(columns);
  torch::NoGradGuard no_grad;
  nn::EvalModeGuard eval_mode(model);
  return torch::softmax(head_logits(model.forward(x), columns), 1);
}

torch::Tensor jacobian_vector_product(nn::TapedModule& model, const torch::Tensor& x,
                                      const std::vector<int64_t>& columns,
                                      const std::vector<torch::Tensor>& direction) {
  check_columns(columns);
  const auto params = model.parameters();
  if (direction.size() != params.size()) {
    throw UsageError("jacobian_vector_product: " + std::to_string(direction.size()) +
                     " direction tensors for " + std::to_string(params.size()) + " parameters");
  }
  for (size_t k = 0; k < params.size(); ++k) {
    if (!direction[k].sizes().equals(params[k].sizes())) {
      throw UsageError("jacobian_vector_product: direction " + std::to_string(k) + " has the wrong shape");
    }
  }
  nn::EvalModeGuard eval_mode(model);
  return in_batches(x, batch_for(model, x, 1), [&](const torch::Tensor& xb) {
    torch::AutoGradMode grad_on(true);
    const auto f = head_logits(model.forward(xb), columns);
    // uᵀJ is linear in u; differentiating ⟨uᵀJ, d⟩ by u gives J d (u's value is irrelevant).
    auto u = torch::zeros_like(f).requires_grad_(true);
    const auto vjp = torch::autograd::grad({f}, params, {u}, /*retain_graph=*/true,
                                           /*create_graph=*/true, /*allow_unused=*/true);
    torch::Tensor dot = torch::zeros({}, f.options());
    for (size_t k = 0; k < params.size(); ++k) {
      if (vjp[k].defined()) dot = dot + (vjp[k] * direction[k].to(vjp[k].options())).sum();
    }
    auto out = torch::autograd::grad({dot}, {u}, {}, /*retain_graph=*/false,
                                     /*create_graph=*/false, /*allow_unused=*/true)[0];
    return out.defined() ? out.detach() : torch::zeros_like(f).detach();
  });
}

torch::Tensor jacobian(nn::TapedModule& model, const torch::Tensor& x,
                       const std::vector<int64_t>& columns) {
  check_columns(columns);
  const auto s = backprop_signals(model, x, unit_rows(columns));
  const auto l = layout_of(model, s.layers);
  std::vector<torch::Tensor> blocks(l.params.size());
  for (size_t k = 0; k < s.layers.size(); ++k) {
    auto [gw, gb] = detail::per_example_grads(s.layers[k], s.t[k]);
    blocks[static_cast<size_t>(l.layer_params[k].first)] = gw;
    if (l.layer_params[k].second >= 0) blocks[static_cast<size_t>(l.layer_params[k].second)] = gb;
  }
  return torch::cat(blocks, 2);
}

torch::Tensor jacobian_oracle(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                              const std::vector<torch::Tensor>& params, const torch::Tensor& x,
                              const std::vector<int64_t>& columns) {
  check_columns(columns);
  torch::AutoGradMode grad_on(true);
  std::vector<torch::Tensor> rows;
  for (int64_t n = 0; n < x.size(0); ++n) {
    const auto f = forward(x.slice(0, n, n + 1));
    for (int64_t c : columns) {
      const auto grads = torch::autograd::grad({f[0][c]}, params, {}, /*retain_graph=*/true,
                                               /*create_graph=*/false, /*allow_unused=*/true);
      std::vector<torch::Tensor> flat;
      for (size_t i = 0; i < params.size(); ++i) {
        flat.push_back((grads[i].defined() ? grads[i] : torch::zeros_like(params[i])).reshape(-1));
      }
      rows.push_back(torch::cat(flat));
    }
  }
  return torch::stack(rows).reshape({x.size(0), static_cast<int64_t>(columns.size()), -1});
}

namespace {

using LayerQuadratic = torch::Tensor (*)(const nn::TapeEntry&, const torch::Tensor&,
                                         const torch::Tensor&, const torch::Tensor&);

// Σ over layers of a per-layer quadratic form of the signals for `rows`, computed kBatch
// inputs at a time (memory independent of N).
torch::Tensor sum_over_layers(nn::TapedModule& model, const torch::Tensor& x, const CotangentFn& rows,
                              int64_t num_rows, const std::vector<torch::Tensor>& variances,
                              LayerQuadratic form) {
  return in_batches(x, batch_for(model, x, num_rows), [&](const torch::Tensor& xb) {
    const auto s = backprop_signals(model, xb, rows);
    return sum_layers(layout_of(model, s.layers), s, variances,
                      [&](size_t k, const torch::Tensor& vw, const torch::Tensor& vb) {
                        return form(s.layers[k], s.t[k], vw, vb);
                      });
  });
}

}  // namespace

torch::Tensor logit_variance(nn::TapedModule& model, const torch::Tensor& x,
                             const std::vector<int64_t>& columns,
                             const std::vector<torch::Tensor>& variances) {
  check_columns(columns);
  return sum_over_layers(model, x, unit_rows(columns), static_cast<int64_t>(columns.size()), variances, detail::diag_quadratic);
}

torch::Tensor logit_covariance(nn::TapedModule& model, const torch::Tensor& x,
                               const std::vector<int64_t>& columns,
                               const std::vector<torch::Tensor>& variances) {
  check_columns(columns);
  return sum_over_layers(model, x, unit_rows(columns), static_cast<int64_t>(columns.size()), variances, detail::row_covariance);
}

torch::Tensor probability_variance(nn::TapedModule& model, const torch::Tensor& x,
                                   const std::vector<int64_t>& columns,
                                   const std::vector<torch::Tensor>& variances) {
  check_columns(columns);
  return sum_over_layers(model, x, lambda_rows(columns), static_cast<int64_t>(columns.size()), variances, detail::diag_quadratic);
}

namespace {

torch::Tensor cross_kernel(nn::TapedModule& model, const torch::Tensor& x1,
                           const torch::Tensor& x2, const CotangentFn& rows, int64_t num_rows,
                           const std::vector<torch::Tensor>& variances) {
  check_kernel_memory(model, x1, x1.size(0) + (x1.is_same(x2) ? 0 : x2.size(0)), num_rows);
  const auto s1 = backprop_signals(model, x1, rows);
  const auto s2 = x1.is_same(x2) ? s1 : backprop_signals(model, x2, rows);
  return sum_layers(layout_of(model, s1.layers), s1, variances,
                    [&](size_t i, const torch::Tensor& vw, const torch::Tensor& vb) {
                      return detail::cross_quadratic(s1.layers[i], s1.t[i], s2.layers[i], s2.t[i], vw, vb);
                    });
}

}  // namespace

torch::Tensor kernel(nn::TapedModule& model, const torch::Tensor& x1, const torch::Tensor& x2,
                     const std::vector<int64_t>& columns,
                     const std::vector<torch::Tensor>& variances) {
  check_columns(columns);
  return cross_kernel(model, x1, x2, unit_rows(columns), static_cast<int64_t>(columns.size()), variances);
}

namespace {

// How many output rows of a kernel over n inputs like x[0] fit in max_floats at once (kernel
// memory is linear in the rows); throws UsageError when not even one does.
int64_t rows_that_fit(nn::TapedModule& model, const torch::Tensor& x, int64_t n, int64_t rows, int64_t max_floats) {
  const int64_t one = kernel_floats(model, x, n, 1);
  if (one > max_floats) throw kernel_too_large(n, 1, one, max_floats, x.element_size());
  const int64_t per_row = kernel_floats(model, x, n, 2) - one;
  return std::clamp<int64_t>(1 + (max_floats - one) / std::max<int64_t>(1, per_row), 1, rows);
}

// The (r, r) blocks of the kernel of one input set with itself: [R, N, N]. Block r needs only
// row r's signals, so the rows are formed as many at a time as fit in max_floats (FROMP's
// 100-way ImageNet heads: a few rows per backward pass over the memory).
torch::Tensor same_row_kernels(nn::TapedModule& model, const torch::Tensor& x, const CotangentFn& rows,
                               int64_t num_rows, const std::vector<torch::Tensor>& variances,
                               int64_t max_floats) {
  const int64_t step = rows_that_fit(model, x, x.size(0), num_rows, max_floats);
  std::vector<torch::Tensor> blocks;
  for (int64_t lo = 0; lo < num_rows; lo += step) {
    const int64_t hi = std::min(num_rows, lo + step);
    const CotangentFn part = [&rows, lo, hi](const torch::Tensor& logits) { return rows(logits).slice(1, lo, hi); };
    const auto s = backprop_signals(model, x, part);
    blocks.push_back(sum_layers(layout_of(model, s.layers), s, variances,
                                [&](size_t i, const torch::Tensor& vw, const torch::Tensor& vb) {
                                  return detail::cross_quadratic_same_rows(s.layers[i], s.t[i], s.layers[i], s.t[i], vw, vb);
                                }));
  }
  return blocks.size() == 1 ? blocks.front() : torch::cat(blocks, 0);
}

}  // namespace

torch::Tensor class_kernels(nn::TapedModule& model, const torch::Tensor& x,
                            const std::vector<int64_t>& columns,
                            const std::vector<torch::Tensor>& variances, int64_t max_floats) {
  check_columns(columns);
  return same_row_kernels(model, x, unit_rows(columns), static_cast<int64_t>(columns.size()), variances, max_floats);
}

torch::Tensor fromp_kernels(nn::TapedModule& model, const torch::Tensor& x,
                            const std::vector<int64_t>& columns,
                            const std::vector<torch::Tensor>& variances, int64_t max_floats) {
  check_columns(columns);
  return same_row_kernels(model, x, lambda_rows(columns), static_cast<int64_t>(columns.size()), variances, max_floats);
}

std::vector<torch::Tensor> curvature_diagonal(nn::TapedModule& model, const torch::Tensor& inputs,
                                              const torch::Tensor& targets,
                                              const std::vector<int64_t>& columns,
                                              Curvature kind, int64_t batch_size) {
  check_columns(columns);
  if (batch_size <= 0) throw UsageError("curvature_diagonal: batch size must be > 0");
  if (kind == Curvature::EmpiricalFisher &&
      (!targets.defined() || targets.size(0) != inputs.size(0))) {
    throw UsageError("curvature_diagonal: the empirical Fisher needs one target per input");
  }
  const auto params = model.parameters();
  std::vector<torch::Tensor> total;
  for (const auto& p : params) total.push_back(torch::zeros_like(p).detach());
  // At most batch_size inputs, fewer when their signals would exceed the per-batch budget.
  const int64_t rows_per_input = kind == Curvature::EmpiricalFisher ? 1 : static_cast<int64_t>(columns.size());
  batch_size = std::min(batch_size, batch_for(model, inputs, rows_per_input));
  for (int64_t start = 0; start < inputs.size(0); start += batch_size) {
    const int64_t stop = std::min(inputs.size(0), start + batch_size);
    CotangentFn rows;
    if (kind == Curvature::GGN) {
      // Λ = Σ_k u_k u_kᵀ with u_k = √p_k (1_k − p) (METHODS.md §2).
      rows = head_rows(columns, [](const torch::Tensor& f) {
        const auto p = torch::softmax(f, 1);
        const auto eye = torch::eye(p.size(1), p.options()).unsqueeze(0);
        return p.sqrt().unsqueeze(2) * (eye - p.unsqueeze(1));
      });
    } else if (kind == Curvature::TrueFisher) {
      // E_{y~p}[(p − 1_y)(p − 1_y)ᵀ]: row y is √p_y (p − 1_y).
      rows = head_rows(columns, [](const torch::Tensor& f) {
        const auto p = torch::softmax(f, 1);
        const auto eye = torch::eye(p.size(1), p.options()).unsqueeze(0);
        return p.sqrt().unsqueeze(2) * (p.unsqueeze(1) - eye);
      });
    } else {
      const auto y = targets.slice(0, start, stop);
      rows = head_rows(columns, [y](const torch::Tensor& f) {
        const auto p = torch::softmax(f, 1);
        return (p - torch::one_hot(y.to(torch::kLong).to(p.device()), p.size(1)).to(p.dtype()))
            .unsqueeze(1);
      });
    }
    const auto s = backprop_signals(model, inputs.slice(0, start, stop), rows);
    const auto l = layout_of(model, s.layers);
    for (size_t k = 0; k < s.layers.size(); ++k) {
      auto [w, b] = detail::sum_squares(s.layers[k], s.t[k]);
      total[static_cast<size_t>(l.layer_params[k].first)] += w.reshape(params[static_cast<size_t>(l.layer_params[k].first)].sizes());
      if (l.layer_params[k].second >= 0) total[static_cast<size_t>(l.layer_params[k].second)] += b;
    }
  }
  return total;
}

}  // namespace kprior::linearize
