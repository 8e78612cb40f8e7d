#include "layer_math.h"

#include "pooled_conv.h"

#include <torch/torch.h>

#include <algorithm>
#include <functional>

namespace kprior::linearize::detail {
namespace {

constexpr int64_t kChunkElements = int64_t{1} << 24;  // per-chunk budget for conv gradients

bool is_linear(const nn::TapeEntry& e) { return e.kind == nn::LayerKind::Linear; }

// Examples per chunk so that chunk × R × P stays within the budget (for a pooled convolution
// off the CPU, chunk × R × its full-size output map, which its scatter-and-GEMM path forms).
int64_t chunk_size(const nn::TapeEntry& e, const torch::Tensor& t) {
  int64_t per_row = e.weight.numel();
  if (e.pooled() && !t.device().is_cpu()) per_row = std::max(per_row, e.pool_index.size(1) * e.conv_size[0] * e.conv_size[1]);
  return std::max<int64_t>(1, kChunkElements / std::max<int64_t>(1, t.size(1) * per_row));
}

// The recorded input and signals of examples [start, stop).
nn::TapeEntry slice_entry(const nn::TapeEntry& e, int64_t start, int64_t stop) {
  nn::TapeEntry s = e;
  s.input = e.input.slice(0, start, stop);
  if (e.pooled()) {
    s.pool_index = e.pool_index.slice(0, start, stop);
    s.pool_slope = e.pool_slope.slice(0, start, stop);
  }
  return s;
}

}  // namespace

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

std::pair<torch::Tensor, torch::Tensor> per_example_grads(const nn::TapeEntry& e,
                                                          const torch::Tensor& t);

namespace {

// Applies fn(weight grads, bias grads) to bounded chunks of examples and concatenates.
// The per-example GEMMs are small (LeNet-5: [R·6, 576] × [576, 25]), so BLAS runs each on
// one core; the chunks are spread over LibTorch's threads instead (CPU only: a GPU is fed
// better by one large batched call), each chunk computed single-threaded. On the CPU the
// examples are cut into kParts chunks whatever the thread count, so the order of the sums
// over chunks (sum_squares) does not follow --threads.
constexpr int64_t kParts = 16;

torch::Tensor over_chunks(const nn::TapeEntry& e, const torch::Tensor& t,
                          const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& fn) {
  const int64_t n = t.size(0);
  int64_t step = chunk_size(e, t);
  const bool cpu = t.device().is_cpu();
  if (cpu) step = std::min(step, std::max<int64_t>(1, (n + kParts - 1) / kParts));
  const bool parallel = cpu && at::get_num_threads() > 1 && n > step;
  std::vector<torch::Tensor> parts(static_cast<size_t>((n + step - 1) / step));
  const auto chunk = [&](int64_t i) {
    const int64_t s = i * step, stop = std::min(n, s + step);
    auto [gw, gb] = per_example_grads(slice_entry(e, s, stop), t.slice(0, s, stop));
    parts[static_cast<size_t>(i)] = fn(gw, gb);
  };
  const auto count = static_cast<int64_t>(parts.size());
  if (parallel) {
    const bool grad = torch::GradMode::is_enabled();  // thread-local: carried into the workers
    at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
      torch::AutoGradMode mode(grad);
      for (int64_t i = begin; i < end; ++i) chunk(i);
    });
  } else {
    for (int64_t i = 0; i < count; ++i) chunk(i);
  }
  return torch::cat(parts, 0);
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> per_example_grads(const nn::TapeEntry& e,
                                                          const torch::Tensor& t) {
  const int64_t n = t.size(0), r = t.size(1);
  torch::Tensor gw, gb;
  if (is_linear(e)) {
    gw = (t.unsqueeze(-1) * e.input.unsqueeze(1).unsqueeze(1)).reshape({n, r, -1});
    if (e.bias.defined()) gb = t;
  } else if (e.kind == nn::LayerKind::BatchNorm2d) {
    // y = γ x̂ + β per channel: ∂/∂γ_c = Σ_spatial t x̂, ∂/∂β_c = Σ_spatial t.
    const auto tc = t.reshape({n, r, t.size(2), -1});
    gw = (tc * e.input.reshape({n, 1, e.input.size(1), -1})).sum(-1);
    if (e.bias.defined()) gb = tc.sum(-1);
  } else if (e.pooled()) {
    return pooled_conv_grads(e, t);
  } else {
    gw = conv_weight_grads(e, t);
    if (e.bias.defined()) gb = t.reshape({n, r, t.size(2), -1}).sum(-1);
  }
  return {gw, gb};
}

namespace {

// Per-example gradients of a Conv2d or BatchNorm2d layer, weight and bias side by side, each
// parameter's scaled by its posterior standard deviation: G √σ² [N, R, P], so that a kernel
// block is one product G √σ² (G √σ²)ᵀ. Formed a bounded chunk of examples at a time: the
// unfolded inputs of a whole FROMP memory at once would not fit at ResNet scale (ResNet-18 at
// 64x64: ~18 M floats per example); at most two copies of the result exist at once (the
// chunks and their concatenation), as kernel_floats counts.
torch::Tensor scaled_grads(const nn::TapeEntry& e, const torch::Tensor& t, const torch::Tensor& var_w,
                           const torch::Tensor& var_b) {
  const auto sd_w = var_w.reshape(-1).sqrt();
  const auto sd_b = e.bias.defined() ? var_b.reshape(-1).sqrt() : torch::Tensor();
  return over_chunks(e, t, [&](const torch::Tensor& gw, const torch::Tensor& gb) {
    return gb.defined() ? torch::cat({gw * sd_w, gb * sd_b}, -1) : gw.mul_(sd_w);
  });
}

// Whether two (entry, signals) pairs are the same pass, so that its gradients serve both sides.
bool same_pass(const nn::TapeEntry& e1, const torch::Tensor& t1, const nn::TapeEntry& e2, const torch::Tensor& t2) {
  return t1.is_same(t2) && e1.input.is_same(e2.input);
}

}  // namespace

torch::Tensor diag_quadratic(const nn::TapeEntry& e, const torch::Tensor& t,
                             const torch::Tensor& var_w, const torch::Tensor& var_b) {
  if (is_linear(e)) {
    // Σ_ij t²_ri a²_j σ²_ij = Σ_i t²_ri (a² σ²ᵀ)_i : one matrix product, no per-example grads.
    const auto t2 = t.square();
    auto v = (t2 * e.input.square().matmul(var_w.t()).unsqueeze(1)).sum(-1);
    if (e.bias.defined()) v = v + t2.matmul(var_b);
    return v;
  }
  return over_chunks(e, t, [&](const torch::Tensor& gw, const torch::Tensor& gb) {
    auto v = gw.square().matmul(var_w.reshape(-1));
    if (gb.defined()) v = v + gb.square().matmul(var_b);
    return v;
  });
}

torch::Tensor row_covariance(const nn::TapeEntry& e, const torch::Tensor& t,
                             const torch::Tensor& var_w, const torch::Tensor& var_b) {
  if (is_linear(e)) {
    // V = Σ_i t_ri t_qi (a² σ²ᵀ)_i (+ σ²_b for the bias): one batched product per example.
    auto b = e.input.square().matmul(var_w.t());  // [N, out]
    if (e.bias.defined()) b = b + var_b;
    return (t * b.unsqueeze(1)).bmm(t.transpose(1, 2));
  }
  return over_chunks(e, t, [&](const torch::Tensor& gw, const torch::Tensor& gb) {
    auto v = (gw * var_w.reshape(-1)).bmm(gw.transpose(1, 2));
    if (gb.defined()) v = v + (gb * var_b).bmm(gb.transpose(1, 2));
    return v;
  });
}

torch::Tensor cross_quadratic(const nn::TapeEntry& e1, const torch::Tensor& t1,
                              const nn::TapeEntry& e2, const torch::Tensor& t2,
                              const torch::Tensor& var_w, const torch::Tensor& var_b) {
  const int64_t n = t1.size(0), r = t1.size(1), m = t2.size(0), q = t2.size(1);
  if (is_linear(e1)) {
    // Σ_ij t1_ri a1_j σ²_ij t2_qi a2_j = Σ_i t1_ri t2_qi A_nmi with A_nmi = Σ_j a1_nj σ²_ij a2_mj
    // (+ σ²_b,i for the bias). All as matrix products, in chunks of n, without any
    // N×M×out×in intermediate.
    const int64_t out = t1.size(2);
    const auto a1s = e1.input.unsqueeze(0) * var_w.unsqueeze(1);  // [out, N, in]
    auto a = a1s.bmm(e2.input.t().unsqueeze(0).expand({out, -1, -1}));  // [out, N, M]
    if (e1.bias.defined()) a = a + var_b.view({out, 1, 1});
    a = a.permute({1, 2, 0});  // [N, M, out]
    const int64_t step = std::max<int64_t>(1, kChunkElements / std::max<int64_t>(1, m * r * out));
    std::vector<torch::Tensor> parts;
    const auto t2t = t2.transpose(1, 2);  // [M, out, Q]
    for (int64_t s = 0; s < n; s += step) {
      const int64_t stop = std::min(n, s + step);
      const int64_t c = stop - s;
      // U[n, m, r, i] = t1[n, r, i] A[n, m, i], then a product with t2[m] per (n, m).
      const auto u = t1.slice(0, s, stop).unsqueeze(1) * a.slice(0, s, stop).unsqueeze(2);
      const auto k = u.reshape({c * m, r, out})
                         .bmm(t2t.unsqueeze(0).expand({c, m, out, q}).reshape({c * m, out, q}));
      parts.push_back(k.view({c, m, r, q}).permute({0, 2, 1, 3}));
    }
    return torch::cat(parts, 0);
  }
  const auto g1 = scaled_grads(e1, t1, var_w, var_b);
  const auto g2 = same_pass(e1, t1, e2, t2) ? g1 : scaled_grads(e2, t2, var_w, var_b);
  return g1.reshape({n * r, -1}).matmul(g2.reshape({m * q, -1}).t()).view({n, r, m, q});
}

torch::Tensor cross_quadratic_same_rows(const nn::TapeEntry& e1, const torch::Tensor& t1,
                                        const nn::TapeEntry& e2, const torch::Tensor& t2,
                                        const torch::Tensor& var_w, const torch::Tensor& var_b) {
  const int64_t r = t1.size(1);
  if (is_linear(e1)) {
    // K_r[n, m] = Σ_i t1[n, r, i] t2[m, r, i] A[n, m, i], A as in cross_quadratic.
    const int64_t out = t1.size(2);
    const auto a1s = e1.input.unsqueeze(0) * var_w.unsqueeze(1);                   // [out, N, in]
    auto a = a1s.bmm(e2.input.t().unsqueeze(0).expand({out, -1, -1}));             // [out, N, M]
    if (e1.bias.defined()) a = a + var_b.view({out, 1, 1});
    std::vector<torch::Tensor> blocks;
    for (int64_t k = 0; k < r; ++k) {
      // Σ_i t1[n, i] A[i, n, m] t2[m, i]: scale A by both signals and sum over i.
      const auto s1 = t1.select(1, k).t().unsqueeze(2);  // [out, N, 1]
      const auto s2 = t2.select(1, k).t().unsqueeze(1);  // [out, 1, M]
      blocks.push_back((a * s1 * s2).sum(0));
    }
    return torch::stack(blocks);
  }
  const auto g1 = scaled_grads(e1, t1, var_w, var_b);
  const auto g2 = same_pass(e1, t1, e2, t2) ? g1 : scaled_grads(e2, t2, var_w, var_b);
  return g1.transpose(0, 1).bmm(g2.permute({1, 2, 0}));  // [R, N, M]
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
  // Per chunk the sums over its examples and rows (weights and bias side by side), then the
  // sum over chunks.
  const auto sums = over_chunks(e, t, [](const torch::Tensor& gw, const torch::Tensor& gb) {
    auto w = gw.square().sum(std::vector<int64_t>{0, 1});
    if (gb.defined()) w = torch::cat({w, gb.square().sum(std::vector<int64_t>{0, 1})});
    return w.unsqueeze(0);
  }).sum(0);
  const int64_t nw = e.weight.numel();
  torch::Tensor b;
  if (e.bias.defined()) b = sums.slice(0, nw);
  return {sums.slice(0, 0, nw).reshape(e.weight.sizes()), b};
}

}  // namespace kprior::linearize::detail
