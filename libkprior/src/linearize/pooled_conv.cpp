#include "pooled_conv.h"

#include "layer_math.h"

#include <ATen/Dispatch.h>
#include <torch/torch.h>

namespace kprior::linearize::detail {
namespace {

// s = t · slope as [N, R, C_out, P]: the signals at the winners' convolution outputs.
torch::Tensor winner_signals(const nn::TapeEntry& e, const torch::Tensor& t) {
  const int64_t n = t.size(0), r = t.size(1), c_out = t.size(2);
  return (t * e.pool_slope.unsqueeze(1)).reshape({n, r, c_out, -1});
}

torch::Tensor bias_grads(const nn::TapeEntry& e, const torch::Tensor& s) {
  return e.bias.defined() ? s.sum(-1) : torch::Tensor();
}

// Width of the SIMD vectors the kernel below is written in (GCC/Clang vector extensions:
// 32 bytes, one AVX register; plain SSE code where AVX is absent).
template <typename T>
struct Simd {
  static constexpr int64_t width = 32 / sizeof(T);
  typedef T type __attribute__((vector_size(32)));
};

// G[r, o, :] = Σ_{winners p of channel o} s[r, o, p] · u[w(o, p), :] for one example, rows
// [r0, r0 + B) of the signals: a small GEMM whose right-hand rows are the winners' patches,
// gathered on the fly instead of copied. u [L, kp] (patches, zero-padded to a whole number
// of vectors), s [R, C_out, P], g [R, C_out, kp]. For each vector-wide slice of the patches the
// B accumulators stay in registers while the winners stream past; winners whose slope is
// zero (ReLU off: about half) are skipped.
template <typename T, int B>
__attribute__((always_inline)) inline void winner_block(const T* u, const int64_t* index, const T* slope,
                                                       const T* s, T* g, int64_t r0, int64_t c_out,
                                                       int64_t pooled, int64_t kp) {
  using V = typename Simd<T>::type;
  constexpr int64_t w = Simd<T>::width;
  for (int64_t o = 0; o < c_out; ++o) {
    const int64_t* io = index + o * pooled;
    const T* so = slope + o * pooled;
    for (int64_t j = 0; j < kp; j += w) {
      V acc[B] = {};
      for (int64_t p = 0; p < pooled; ++p) {
        if (so[p] == T(0)) continue;
        V patch;
        __builtin_memcpy(&patch, u + io[p] * kp + j, sizeof(V));
        for (int b = 0; b < B; ++b) acc[b] += s[((r0 + b) * c_out + o) * pooled + p] * patch;
      }
      for (int b = 0; b < B; ++b) __builtin_memcpy(g + ((r0 + b) * c_out + o) * kp + j, &acc[b], sizeof(V));
    }
  }
}

// All rows of one example, in blocks of 8 rows (10 of the 16 vector registers in use), then
// the remainder.
template <typename T>
__attribute__((always_inline)) inline void winner_rows(const T* u, const int64_t* index, const T* slope,
                                                      const T* s, T* g, int64_t rows, int64_t c_out,
                                                      int64_t pooled, int64_t kp) {
  int64_t r = 0;
  for (; r + 8 <= rows; r += 8) winner_block<T, 8>(u, index, slope, s, g, r, c_out, pooled, kp);
  for (; r + 4 <= rows; r += 4) winner_block<T, 4>(u, index, slope, s, g, r, c_out, pooled, kp);
  for (; r + 2 <= rows; r += 2) winner_block<T, 2>(u, index, slope, s, g, r, c_out, pooled, kp);
  for (; r < rows; ++r) winner_block<T, 1>(u, index, slope, s, g, r, c_out, pooled, kp);
}

// The same code compiled twice, for AVX2 with FMA and for the baseline ISA, chosen at run time
// (the library is built without -march, so that it runs on any x86-64).
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
template <typename T>
__attribute__((target("avx2,fma"))) void winner_rows_avx2(const T* u, const int64_t* index, const T* slope,
                                                          const T* s, T* g, int64_t rows, int64_t c_out,
                                                          int64_t pooled, int64_t kp) {
  winner_rows(u, index, slope, s, g, rows, c_out, pooled, kp);
}

bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#endif

// The convolution's geometry for one example.
struct Geometry {
  int64_t c_in, h, w;        // input
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  int64_t ho, wo;            // convolution output
};

// One example's patches as rows: u[(oy, ox), (c, ky, kx)] = x[c, oy·sh − ph + ky·dh, ox·sw − pw +
// kx·dw] (zero outside the image, and zero in the padding columns [K, kp)); what unfold gives,
// transposed, written straight into a buffer that stays in cache for the kernel.
template <typename T>
void patch_rows(const T* x, const Geometry& g, int64_t kp, T* u) {
  for (int64_t oy = 0; oy < g.ho; ++oy) {
    for (int64_t ox = 0; ox < g.wo; ++ox) {
      T* row = u + (oy * g.wo + ox) * kp;
      int64_t j = 0;
      for (int64_t c = 0; c < g.c_in; ++c) {
        for (int64_t ky = 0; ky < g.kh; ++ky) {
          const int64_t iy = oy * g.sh - g.ph + ky * g.dh;
          if (iy < 0 || iy >= g.h) {  // a padding row
            for (int64_t kx = 0; kx < g.kw; ++kx, ++j) row[j] = T(0);
            continue;
          }
          const T* xr = x + (c * g.h + iy) * g.w;
          for (int64_t kx = 0; kx < g.kw; ++kx, ++j) {
            const int64_t ix = ox * g.sw - g.pw + kx * g.dw;
            row[j] = (ix >= 0 && ix < g.w) ? xr[ix] : T(0);
          }
        }
      }
      for (; j < kp; ++j) row[j] = T(0);
    }
  }
}

Geometry geometry(const nn::TapeEntry& e) {
  return {e.input.size(1), e.input.size(2), e.input.size(3),
          e.kernel_size[0], e.kernel_size[1], e.stride[0], e.stride[1],
          e.padding[0], e.padding[1], e.dilation[0], e.dilation[1],
          e.conv_size[0], e.conv_size[1]};
}

// One example's input signals, rows innermost: gx[c, y, x, :] (y, x in the zero-padded input,
// the R rows padded to whole vectors, nv of them) += W[o, c, ky, kx] · s[:, o, p] over the
// winners, at (y, x) = w(o, p)·stride + (ky, kx)·dilation. Each winner touches K = C_in·kh·kw
// positions with nv vector multiply-adds each; winners with slope zero are skipped.
// wt [C_out, K], offsets [K] (the positions of (c, ky, kx) relative to a patch's corner),
// v [C_out, P, nv·width] (s with the rows innermost).
template <typename T>
__attribute__((always_inline)) inline void scatter_winners(const T* wt, const int64_t* offsets, const T* v,
                                                          const int64_t* index, const T* slope, T* gx,
                                                          const Geometry& g, int64_t c_out, int64_t pooled,
                                                          int64_t nv) {
  using V = typename Simd<T>::type;
  constexpr int64_t w = Simd<T>::width;
  const int64_t k = g.c_in * g.kh * g.kw, wpad = g.w + 2 * g.pw, stride = nv * w;
  for (int64_t o = 0; o < c_out; ++o) {
    for (int64_t p = 0; p < pooled; ++p) {
      if (slope[o * pooled + p] == T(0)) continue;
      const int64_t win = index[o * pooled + p];
      T* corner = gx + ((win / g.wo) * g.sh * wpad + (win % g.wo) * g.sw) * stride;
      const T* vp = v + (o * pooled + p) * stride;
      for (int64_t q = 0; q < nv; ++q) {
        V s;
        __builtin_memcpy(&s, vp + q * w, sizeof(V));
        const T* wo = wt + o * k;
        for (int64_t j = 0; j < k; ++j) {
          T* dst = corner + offsets[j] * stride + q * w;
          V acc;
          __builtin_memcpy(&acc, dst, sizeof(V));
          acc += wo[j] * s;
          __builtin_memcpy(dst, &acc, sizeof(V));
        }
      }
    }
  }
}

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
template <typename T>
__attribute__((target("avx2,fma"))) void scatter_winners_avx2(const T* wt, const int64_t* offsets, const T* v,
                                                              const int64_t* index, const T* slope, T* gx,
                                                              const Geometry& g, int64_t c_out, int64_t pooled,
                                                              int64_t nv) {
  scatter_winners(wt, offsets, v, index, slope, gx, g, c_out, pooled, nv);
}
#endif

template <typename T>
void scatter_winners_any(const T* wt, const int64_t* offsets, const T* v, const int64_t* index, const T* slope,
                         T* gx, const Geometry& g, int64_t c_out, int64_t pooled, int64_t nv) {
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
  if (has_avx2()) return scatter_winners_avx2(wt, offsets, v, index, slope, gx, g, c_out, pooled, nv);
#endif
  scatter_winners(wt, offsets, v, index, slope, gx, g, c_out, pooled, nv);
}

template <typename T>
void accumulate_winners(const T* u, const int64_t* index, const T* slope, const T* s, T* g, int64_t rows,
                        int64_t c_out, int64_t pooled, int64_t kp) {
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
  if (has_avx2()) return winner_rows_avx2(u, index, slope, s, g, rows, c_out, pooled, kp);
#endif
  winner_rows(u, index, slope, s, g, rows, c_out, pooled, kp);
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> pooled_conv_grads_dense(const nn::TapeEntry& e, const torch::Tensor& t) {
  const int64_t n = t.size(0), r = t.size(1), c_out = t.size(2);
  const auto s = winner_signals(e, t);
  const int64_t pooled = s.size(3);
  const auto index = e.pool_index.reshape({n, 1, c_out, pooled}).expand({n, r, c_out, pooled});
  const auto full = torch::zeros({n, r, c_out, e.conv_size[0] * e.conv_size[1]}, s.options())
                        .scatter_add_(3, index, s);
  return {conv_weight_grads(e, full), bias_grads(e, s)};
}

bool pooled_conv_fused(const torch::Tensor& t) {
  return t.device().is_cpu() && (t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kDouble);
}

std::pair<torch::Tensor, torch::Tensor> pooled_conv_grads(const nn::TapeEntry& e, const torch::Tensor& t) {
  if (!pooled_conv_fused(t)) return pooled_conv_grads_dense(e, t);
  const int64_t n = t.size(0), rows = t.size(1), c_out = t.size(2);
  const auto s = winner_signals(e, t).contiguous();
  const int64_t pooled = s.size(3);
  const auto x = e.input.contiguous();
  const auto geo = geometry(e);
  const int64_t l = geo.ho * geo.wo, k = geo.c_in * geo.kh * geo.kw;
  // Patch rows zero-padded to whole SIMD vectors.
  const int64_t w = t.scalar_type() == torch::kFloat ? Simd<float>::width : Simd<double>::width;
  const int64_t kp = (k + w - 1) / w * w;
  const auto index = e.pool_index.reshape({n, c_out, pooled}).contiguous();
  const auto slope = e.pool_slope.reshape({n, c_out, pooled}).contiguous();
  auto g = torch::empty({n, rows, c_out, kp}, s.options());
  auto u = torch::empty({l, kp}, s.options());  // one example's patches at a time
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "pooled_conv_grads", [&] {
    const auto* xp = x.data_ptr<scalar_t>();
    const auto* sp = s.data_ptr<scalar_t>();
    const auto* slp = slope.data_ptr<scalar_t>();
    const auto* ip = index.data_ptr<int64_t>();
    auto* up = u.data_ptr<scalar_t>();
    auto* gp = g.data_ptr<scalar_t>();
    for (int64_t i = 0; i < n; ++i) {
      patch_rows(xp + i * geo.c_in * geo.h * geo.w, geo, kp, up);
      accumulate_winners(up, ip + i * c_out * pooled, slp + i * c_out * pooled,
                         sp + i * rows * c_out * pooled, gp + i * rows * c_out * kp, rows, c_out, pooled, kp);
    }
  });
  const auto gw = kp == k ? g.reshape({n, rows, c_out * k}) : g.narrow(3, 0, k).reshape({n, rows, c_out * k});
  return {gw, bias_grads(e, s)};
}

torch::Tensor pooled_conv_input_signals(const nn::TapeEntry& e, const torch::Tensor& t) {
  const int64_t n = t.size(0), rows = t.size(1), c_out = t.size(2);
  const auto geo = geometry(e);
  const int64_t width = t.scalar_type() == torch::kFloat ? Simd<float>::width : Simd<double>::width;
  const int64_t nv = (rows + width - 1) / width, rp = nv * width;
  // s with the rows innermost and padded: v [N, C_out, P, rp].
  auto v = torch::zeros({n, c_out, t.size(3) * t.size(4), rp}, t.options());
  v.narrow(3, 0, rows).copy_(winner_signals(e, t).permute({0, 2, 3, 1}));
  const int64_t pooled = v.size(2);
  const int64_t hpad = geo.h + 2 * geo.ph, wpad = geo.w + 2 * geo.pw;
  const auto wt = e.weight.detach().reshape({c_out, -1}).to(t.scalar_type()).contiguous();
  std::vector<int64_t> offsets;
  for (int64_t c = 0; c < geo.c_in; ++c) {
    for (int64_t ky = 0; ky < geo.kh; ++ky) {
      for (int64_t kx = 0; kx < geo.kw; ++kx) offsets.push_back((c * hpad + ky * geo.dh) * wpad + kx * geo.dw);
    }
  }
  const auto index = e.pool_index.reshape({n, c_out, pooled}).contiguous();
  const auto slope = e.pool_slope.reshape({n, c_out, pooled}).contiguous();
  auto gx = torch::zeros({n, geo.c_in, hpad, wpad, rp}, t.options());
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "pooled_conv_input_signals", [&] {
    const auto* wp = wt.data_ptr<scalar_t>();
    const auto* vp = v.data_ptr<scalar_t>();
    const auto* ip = index.data_ptr<int64_t>();
    const auto* sp = slope.data_ptr<scalar_t>();
    auto* gp = gx.data_ptr<scalar_t>();
    at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        scatter_winners_any(wp, offsets.data(), vp + i * c_out * pooled * rp, ip + i * c_out * pooled,
                            sp + i * c_out * pooled, gp + i * geo.c_in * hpad * wpad * rp, geo, c_out, pooled, nv);
      }
    });
  });
  // Crop the padding, rows back to dimension 1.
  return gx.narrow(2, geo.ph, geo.h).narrow(3, geo.pw, geo.w).narrow(4, 0, rows).permute({0, 4, 1, 2, 3}).contiguous();
}

}  // namespace kprior::linearize::detail
