#include "ivon_kernels.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kprior/core/random.h"

// Multi-tensor copy and clamp (at::_foreach_copy_, _foreach_clamp_min_/max_ with a scalar)
// arrived in LibTorch 2.1; 1.13 has neither.
#define KPRIOR_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace kprior::optim::detail {
namespace {

constexpr int64_t kGrain = 4096;        // elements per parallel chunk
constexpr int64_t kNoiseChunk = 8192;   // elements per noise stream (fixes the noise layout)

bool fusable_one(const torch::Tensor& t, const torch::Tensor& like) {
  return t.defined() && t.device().is_cpu() && t.is_contiguous() &&
         t.scalar_type() == like.scalar_type();
}

}  // namespace

namespace {

// Record one sample on [begin, end) and restore the mean (see record_and_restore).
template <typename T, bool kGradSq>
void record_range(T* __restrict pp, const T* __restrict sp, const T* __restrict gp,
                  T* __restrict gs, T* __restrict ns, int64_t begin, int64_t end, bool first) {
  if (first) {
    for (int64_t i = begin; i < end; ++i) {
      const T gi = gp[i];
      gs[i] = gi;
      ns[i] = kGradSq ? gi * gi : (pp[i] - sp[i]) * gi;
      pp[i] = sp[i];
    }
  } else {
    for (int64_t i = begin; i < end; ++i) {
      const T gi = gp[i];
      gs[i] += gi;
      ns[i] += kGradSq ? gi * gi : (pp[i] - sp[i]) * gi;
      pp[i] = sp[i];
    }
  }
}

// saved ← p;  p ← p + ε / sqrt(λ (h + δ)) on n elements.
template <typename T>
void sample_range(T* __restrict pp, T* __restrict sp, const T* __restrict hp,
                  const T* __restrict ep, int64_t n, T lam, T wd) {
  for (int64_t i = 0; i < n; ++i) {
    sp[i] = pp[i];
    pp[i] = pp[i] + ep[i] / std::sqrt(lam * (hp[i] + wd));
  }
}

}  // namespace

bool fusable(const torch::Tensor& param, const torch::Tensor& a, const torch::Tensor& b) {
  const auto type = param.scalar_type();
  return param.device().is_cpu() && param.is_contiguous() &&
         (type == torch::kFloat32 || type == torch::kFloat64) && fusable_one(a, param) &&
         fusable_one(b, param);
}

void write_sample_fused(const torch::Tensor& p, const torch::Tensor& saved,
                        const torch::Tensor& hess, const torch::Tensor& eps, double ess,
                        double weight_decay) {
  const auto e = eps.contiguous();
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "ivon_write_sample", [&] {
    auto* pp = p.data_ptr<scalar_t>();
    auto* sp = saved.data_ptr<scalar_t>();
    const auto* hp = hess.data_ptr<scalar_t>();
    const auto* ep = e.data_ptr<scalar_t>();
    const auto lam = static_cast<scalar_t>(ess);
    const auto wd = static_cast<scalar_t>(weight_decay);
    at::parallel_for(0, p.numel(), kGrain, [=](int64_t begin, int64_t end) {
      sample_range<scalar_t>(pp + begin, sp + begin, hp + begin, ep + begin, end - begin, lam, wd);
    });
  });
}

void write_sample_streamed(const torch::Tensor& p, const torch::Tensor& saved,
                           const torch::Tensor& hess, uint64_t stream, double ess,
                           double weight_decay) {
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "ivon_write_sample_streamed", [&] {
    auto* pp = p.data_ptr<scalar_t>();
    auto* sp = saved.data_ptr<scalar_t>();
    const auto* hp = hess.data_ptr<scalar_t>();
    const auto lam = static_cast<scalar_t>(ess);
    const auto wd = static_cast<scalar_t>(weight_decay);
    const int64_t n = p.numel();
    const int64_t chunks = (n + kNoiseChunk - 1) / kNoiseChunk;
    at::parallel_for(0, chunks, 1, [&](int64_t first_chunk, int64_t last_chunk) {
      // Two passes per chunk: the (branchy) noise into a small buffer, then a loop the
      // compiler vectorises. The buffer stays in L1.
      std::vector<scalar_t> eps(static_cast<size_t>(kNoiseChunk));
      for (int64_t c = first_chunk; c < last_chunk; ++c) {
        SplitMix64 rng(mix_seed(stream, static_cast<uint64_t>(c)));
        const int64_t begin = c * kNoiseChunk;
        const int64_t len = std::min(n, begin + kNoiseChunk) - begin;
        fill_standard_normal(eps.data(), len, rng);
        sample_range<scalar_t>(pp + begin, sp + begin, hp + begin, eps.data(), len, lam, wd);
      }
    });
  });
}

void record_and_restore_fused(const torch::Tensor& p, const torch::Tensor& saved,
                              const torch::Tensor& grad, const torch::Tensor& grad_sum,
                              const torch::Tensor& nxg_sum, bool gradsq, bool first) {
  if (!grad.defined()) {  // no gradient reached this parameter: ĝ = 0
    if (first) {
      grad_sum.zero_();
      nxg_sum.zero_();
    }
    p.copy_(saved);
    return;
  }
  const auto g = grad.contiguous().to(p.scalar_type());
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "ivon_record", [&] {
    auto* pp = p.data_ptr<scalar_t>();
    const auto* sp = saved.data_ptr<scalar_t>();
    const auto* gp = g.data_ptr<scalar_t>();
    auto* gs = grad_sum.data_ptr<scalar_t>();
    auto* ns = nxg_sum.data_ptr<scalar_t>();
    at::parallel_for(0, p.numel(), kGrain, [=](int64_t begin, int64_t end) {
      if (gradsq) {
        record_range<scalar_t, true>(pp, sp, gp, gs, ns, begin, end, first);
      } else {
        record_range<scalar_t, false>(pp, sp, gp, gs, ns, begin, end, first);
      }
    });
  });
}

namespace {

// Scalar constants of one update, in the parameter's precision.
template <typename T>
struct Consts {
  T b1, b2, lam, wd, rho, alpha, inv_b, inv_k, half_sq;
};

// Steps 1–5 on [begin, end). A separate function with restrict-qualified pointers and values
// (not lambda captures) so GCC vectorises it also inside an OpenMP-outlined region.
template <typename T, bool kGradSq>
void update_range(T* __restrict mp, T* __restrict gp, T* __restrict hp, const T* __restrict gs,
                  const T* __restrict ns, int64_t begin, int64_t end, const Consts<T> k) {
  for (int64_t i = begin; i < end; ++i) {
    const T gbar = gs[i] * k.inv_k;
    const T nu = ns[i] * k.inv_k;
    const T h = hp[i];
    // 1. momentum
    const T g = k.b1 * gp[i] + (1 - k.b1) * gbar;
    // 2. Hessian estimate (old h): price ĥ = λ ν (h + δ); gradsq ĥ = λ mean(ĝ²)
    const T hhat = kGradSq ? k.lam * nu : k.lam * nu * (h + k.wd);
    // 3. Hessian update with the correction term that keeps h + δ > 0
    const T d = h - hhat;
    const T hn = k.b2 * h + (1 - k.b2) * hhat + k.half_sq * d * d / (h + k.wd);
    // 5. preconditioned, clipped step of the mean (new g, new h)
    T step = (g * k.inv_b + k.wd * mp[i]) / (hn + k.wd);
    step = std::min(std::max(step, -k.rho), k.rho);
    mp[i] -= k.alpha * step;
    gp[i] = g;
    hp[i] = hn;
  }
}

}  // namespace

void update_fused(const torch::Tensor& m, const torch::Tensor& momentum, const torch::Tensor& hess,
                  const torch::Tensor& grad_sum, const torch::Tensor& nxg_sum,
                  const UpdateConstants& c) {
  AT_DISPATCH_FLOATING_TYPES(m.scalar_type(), "ivon_update", [&] {
    using T = scalar_t;
    T* mp = m.data_ptr<T>();
    T* gp = momentum.data_ptr<T>();
    T* hp = hess.data_ptr<T>();
    const T* gs = grad_sum.data_ptr<T>();
    const T* ns = nxg_sum.data_ptr<T>();
    const Consts<T> k{static_cast<T>(c.beta1), static_cast<T>(c.beta2),
                      static_cast<T>(c.ess), static_cast<T>(c.weight_decay),
                      static_cast<T>(c.clip_radius), static_cast<T>(c.step_size),
                      static_cast<T>(1.0 / c.debias), static_cast<T>(c.inv_samples),
                      static_cast<T>(0.5 * (1.0 - c.beta2) * (1.0 - c.beta2))};
    const bool gradsq = c.gradsq;
    at::parallel_for(0, m.numel(), kGrain, [=](int64_t begin, int64_t end) {
      if (gradsq) {
        update_range<T, true>(mp, gp, hp, gs, ns, begin, end, k);
      } else {
        update_range<T, false>(mp, gp, hp, gs, ns, begin, end, k);
      }
    });
  });
}

// ---- multi-tensor operations ----------------------------------------------------------------
// Each at::_foreach_* call is one pass over all the listed tensors. On a GPU the passes, not the
// launches, then bound the cost (ResNet-18: 47 MB per fp32 list), so the formulas below are
// arranged for few passes: a sample ~6, a record ~5, an update ~16 (the fused CPU loops: 1 each).

void copy_all(const TensorVec& dst, const TensorVec& src) {
  if (dst.empty()) return;  // LibTorch 2.x refuses empty tensor lists (CPU groups take the fused path)
#if KPRIOR_TORCH_AT_LEAST(2, 2)
  at::_foreach_copy_(dst, src);
#else
  // LibTorch 1.13 has no multi-tensor copy (its CPU foreach ops are per-tensor loops anyway).
  for (size_t i = 0; i < dst.size(); ++i) dst[i].copy_(src[i]);
#endif
}

void add_noise_foreach(const TensorVec& p, const TensorVec& hess, const TensorVec& eps,
                       double ess, double weight_decay) {
  if (p.empty()) return;
  // p += (1/√λ) ε / √(h + δ): the same σ = 1/√(λ (h + δ)) with λ moved into the scalar, so
  // three passes instead of four.
  auto root = at::_foreach_add(hess, weight_decay);
  at::_foreach_sqrt_(root);
  at::_foreach_addcdiv_(p, eps, root, 1.0 / std::sqrt(ess));
}

void record_and_restore_foreach(const TensorVec& p, const TensorVec& saved, const TensorVec& grads,
                                TensorVec& grad_sum, TensorVec& nxg_sum, bool gradsq, bool first) {
  if (p.empty()) return;
  if (first) {
    copy_all(grad_sum, grads);  // Σĝ ← ĝ
    // Σ n⊙ĝ ← (p − m) ⊙ ĝ, formed out of place (same layout as p) instead of copied in.
    if (gradsq) {
      nxg_sum = at::_foreach_mul(grads, grads);
    } else {
      nxg_sum = at::_foreach_sub(p, saved);
      at::_foreach_mul_(nxg_sum, grads);
    }
  } else {
    at::_foreach_add_(grad_sum, grads);
    if (gradsq) {
      at::_foreach_addcmul_(nxg_sum, grads, grads);
    } else {
      at::_foreach_addcmul_(nxg_sum, at::_foreach_sub(p, saved), grads);
    }
  }
  copy_all(p, saved);  // restore the mean
}

void update_foreach(const TensorVec& m, const TensorVec& momentum, const TensorVec& hess,
                    const TensorVec& grad_sum, const TensorVec& nxg_sum, const UpdateConstants& c) {
  if (m.empty()) return;
  const double lam_k = c.ess * c.inv_samples;  // λ / k: ĥ = (λ/k) Σ n⊙ĝ (h + δ)  or (λ/k) Σ ĝ²
  // 1. g ← β1 g + (1 − β1) ḡ,  ḡ = Σĝ / k
#if KPRIOR_TORCH_AT_LEAST(2, 2)
  if (c.inv_samples == 1.0) {
    at::_foreach_lerp_(momentum, grad_sum, 1.0 - c.beta1);  // g + (1 − β1)(ḡ − g): one pass
  } else
#endif
  {
    at::_foreach_mul_(momentum, c.beta1);
    at::_foreach_add_(momentum, grad_sum, (1.0 - c.beta1) * c.inv_samples);
  }
  // 2. ĥ / (λ/k) into nxg_sum (price: Σ n⊙ĝ (h + δ) with the old h; gradsq: Σ ĝ² as it is)
  const auto hpd = at::_foreach_add(hess, c.weight_decay);  // h + δ, old h
  if (!c.gradsq) at::_foreach_mul_(nxg_sum, hpd);
  // 3. h ← β2 h + (1 − β2) ĥ + ½ (1 − β2)² (h − ĥ)² / (h + δ)   (old h on the right),
  //    written as h − (1 − β2) d + ½ (1 − β2)² d² / (h + δ) with d = h − ĥ.
  auto d = at::_foreach_sub(hess, nxg_sum, lam_k);
  at::_foreach_add_(hess, d, -(1.0 - c.beta2));
  at::_foreach_mul_(d, d);
  at::_foreach_addcdiv_(hess, d, hpd, 0.5 * (1.0 - c.beta2) * (1.0 - c.beta2));
  // 5. m ← m − α' clip((g / b + δ m) / (h + δ))   (new g, new h)
  auto step = at::_foreach_mul(m, c.weight_decay);
  at::_foreach_add_(step, momentum, 1.0 / c.debias);
  const auto den = at::_foreach_add(hess, c.weight_decay);
  if (std::isfinite(c.clip_radius)) {
    at::_foreach_div_(step, den);
#if KPRIOR_TORCH_AT_LEAST(2, 2)
    at::_foreach_clamp_min_(step, -c.clip_radius);
    at::_foreach_clamp_max_(step, c.clip_radius);
#else
    for (auto& s : step) s.clamp_(-c.clip_radius, c.clip_radius);
#endif
    at::_foreach_add_(m, step, -c.step_size);
  } else {
    at::_foreach_addcdiv_(m, step, den, -c.step_size);  // divide and subtract in one pass
  }
}

}  // namespace kprior::optim::detail
