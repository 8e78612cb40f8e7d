#include "layer_math.h"

#include <torch/torch.h>

#include <algorithm>

namespace kprior::linearize::detail {
namespace {

constexpr int64_t kChunkElements = int64_t{1} << 24;  // per-chunk budget for conv gradients

bool is_linear(const nn::TapeEntry& e) { return e.kind == nn::LayerKind::Linear; }

// Examples per chunk so that chunk × R × P stays within the budget.
int64_t chunk_size(const torch::Tensor& t, const torch::Tensor& weight) {
  return std::max<int64_t>(1, kChunkElements / std::max<int64_t>(1, t.size(1) * weight.numel()));
}

// The recorded input and signals of examples [start, stop).
nn::TapeEntry slice_entry(const nn::TapeEntry& e, int64_t start, int64_t stop) {
  nn::TapeEntry s = e;
  s.input = e.input.slice(0, start, stop);
  return s;
}

// Conv2d weight gradients [N, R, C_out·K] from unfold(input) [N, K, L] and t [N, R, C_out, L].
torch::Tensor conv_weight_grads(const nn::TapeEntry& e, const torch::Tensor& t) {
  const auto u = torch::nn::functional::unfold(
      e.input, torch::nn::functional::UnfoldFuncOptions(e.kernel_size)
                   .dilation(e.dilation).padding(e.padding).stride(e.stride));
  const int64_t n = t.size(0), r = t.size(1), c_out = t.size(2);
  // One batched GEMM per example: [R·C_out, L] × [L, K] (einsum may broadcast instead).
  const auto tl = t.reshape({n, r * c_out, -1});
  return tl.bmm(u.transpose(1, 2)).reshape({n, r, -1});
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> per_example_grads(const nn::TapeEntry& e,
                                                          const torch::Tensor& t) {
  const int64_t n = t.size(0), r = t.size(1);
  torch::Tensor gw, gb;
  if (is_linear(e)) {
    gw = (t.unsqueeze(-1) * e.input.unsqueeze(1).unsqueeze(1)).reshape({n, r, -1});
    if (e.bias.defined()) gb = t;
  } else {
    gw = conv_weight_grads(e, t);
    if (e.bias.defined()) gb = t.reshape({n, r, t.size(2), -1}).sum(-1);
  }
  return {gw, gb};
}

torch::Tensor diag_quadratic(const nn::TapeEntry& e, const torch::Tensor& t,
                             const torch::Tensor& var_w, const torch::Tensor& var_b) {
  if (is_linear(e)) {
    // Σ_ij t²_ri a²_j σ²_ij = Σ_i t²_ri (a² σ²ᵀ)_i : one matrix product, no per-example grads.
    const auto t2 = t.square();
    auto v = (t2 * e.input.square().matmul(var_w.t()).unsqueeze(1)).sum(-1);
    if (e.bias.defined()) v = v + t2.matmul(var_b);
    return v;
  }
  std::vector<torch::Tensor> parts;
  const int64_t step = chunk_size(t, e.weight);
  for (int64_t s = 0; s < t.size(0); s += step) {
    const int64_t stop = std::min(t.size(0), s + step);
    auto [gw, gb] = per_example_grads(slice_entry(e, s, stop), t.slice(0, s, stop));
    auto v = gw.square().matmul(var_w.reshape(-1));
    if (gb.defined()) v = v + gb.square().matmul(var_b);
    parts.push_back(v);
  }
  return torch::cat(parts, 0);
}

torch::Tensor row_covariance(const nn::TapeEntry& e, const torch::Tensor& t,
                             const torch::Tensor& var_w, const torch::Tensor& var_b) {
  if (is_linear(e)) {
    const auto b = e.input.square().matmul(var_w.t());  // [N, out]
    auto v = torch::einsum("nri,nqi,ni->nrq", {t, t, b});
    if (e.bias.defined()) v = v + torch::einsum("nri,nqi,i->nrq", {t, t, var_b});
    return v;
  }
  std::vector<torch::Tensor> parts;
  const int64_t step = chunk_size(t, e.weight);
  for (int64_t s = 0; s < t.size(0); s += step) {
    const int64_t stop = std::min(t.size(0), s + step);
    auto [gw, gb] = per_example_grads(slice_entry(e, s, stop), t.slice(0, s, stop));
    auto v = torch::einsum("nrp,nqp,p->nrq", {gw, gw, var_w.reshape(-1)});
    if (gb.defined()) v = v + torch::einsum("nrp,nqp,p->nrq", {gb, gb, var_b});
    parts.push_back(v);
  }
  return torch::cat(parts, 0);
}

torch::Tensor cross_quadratic(const nn::TapeEntry& e1, const torch::Tensor& t1,
                              const nn::TapeEntry& e2, const torch::Tensor& t2,
                              const torch::Tensor& var_w, const torch::Tensor& var_b) {
  if (is_linear(e1)) {
    // Σ_ij t1_ri a1_j σ²_ij t2_qi a2'_j = Σ_i t1_ri t2_qi A_nmi with A = Σ_j a1_nj σ²_ij a2_mj.
    const auto a = torch::einsum("nj,ij,mj->nmi", {e1.input, var_w, e2.input});
    auto k = torch::einsum("nri,mqi,nmi->nrmq", {t1, t2, a});
    if (e1.bias.defined()) k = k + torch::einsum("nri,mqi,i->nrmq", {t1, t2, var_b});
    return k;
  }
  auto [g1w, g1b] = per_example_grads(e1, t1);
  auto [g2w, g2b] = per_example_grads(e2, t2);
  auto k = torch::einsum("nrp,p,mqp->nrmq", {g1w, var_w.reshape(-1), g2w});
  if (g1b.defined()) k = k + torch::einsum("nrp,p,mqp->nrmq", {g1b, var_b, g2b});
  return k;
}

std::pair<torch::Tensor, torch::Tensor> sum_squares(const nn::TapeEntry& e, const torch::Tensor& t) {
  if (is_linear(e)) {
    // Σ_nr t²_nri a²_nj = ((Σ_r t²) ᵀ a²)_ij
    const auto t2 = t.square().sum(1);  // [N, out]
    auto w = t2.t().matmul(e.input.square());
    torch::Tensor b;
    if (e.bias.defined()) b = t2.sum(0);
    return {w, b};
  }
  torch::Tensor w = torch::zeros({e.weight.numel()}, t.options());
  torch::Tensor b = e.bias.defined() ? torch::zeros({e.bias.numel()}, t.options()) : torch::Tensor();
  const int64_t step = chunk_size(t, e.weight);
  for (int64_t s = 0; s < t.size(0); s += step) {
    const int64_t stop = std::min(t.size(0), s + step);
    auto [gw, gb] = per_example_grads(slice_entry(e, s, stop), t.slice(0, s, stop));
    w += gw.square().sum(std::vector<int64_t>{0, 1});
    if (gb.defined()) b += gb.square().sum(std::vector<int64_t>{0, 1});
  }
  return {w.reshape(e.weight.sizes()), b};
}

}  // namespace kprior::linearize::detail
