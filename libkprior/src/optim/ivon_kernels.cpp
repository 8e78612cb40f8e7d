#include "ivon_kernels.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kprior/core/random.h"

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

void write_sample(const torch::Tensor& p, const torch::Tensor& saved, const torch::Tensor& hess,
                  const torch::Tensor& eps, double ess, double weight_decay, bool fused) {
  if (fused) {
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
    return;
  }
  saved.copy_(p);
  p.add_(eps / (hess + weight_decay).mul(ess).sqrt());
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

void record_and_restore(const torch::Tensor& p, const torch::Tensor& saved,
                        const torch::Tensor& grad, const torch::Tensor& grad_sum,
                        const torch::Tensor& nxg_sum, bool gradsq, bool first, bool fused) {
  if (!grad.defined()) {  // no gradient reached this parameter: ĝ = 0
    if (first) {
      grad_sum.zero_();
      nxg_sum.zero_();
    }
    p.copy_(saved);
    return;
  }
  if (fused) {
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
    return;
  }
  if (first) {
    grad_sum.zero_();
    nxg_sum.zero_();
  }
  grad_sum.add_(grad);
  if (gradsq) {
    nxg_sum.addcmul_(grad, grad);
  } else {
    nxg_sum.addcmul_(p - saved, grad);
  }
  p.copy_(saved);
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

void update_param(const torch::Tensor& m, const torch::Tensor& momentum, const torch::Tensor& hess,
                  const torch::Tensor& grad_sum, const torch::Tensor& nxg_sum,
                  const UpdateConstants& c, bool fused) {
  if (fused) {
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
    return;
  }
  const auto gbar = grad_sum * c.inv_samples;
  const auto nu = nxg_sum * c.inv_samples;
  momentum.mul_(c.beta1).add_(gbar, 1.0 - c.beta1);
  const auto hhat = c.gradsq ? nu * c.ess : nu * (hess + c.weight_decay) * c.ess;
  const auto hn = hess * c.beta2 + hhat * (1.0 - c.beta2) +
                  (hess - hhat).square() / (hess + c.weight_decay) *
                      (0.5 * (1.0 - c.beta2) * (1.0 - c.beta2));
  hess.copy_(hn);
  auto step = (momentum / c.debias + m * c.weight_decay) / (hess + c.weight_decay);
  if (std::isfinite(c.clip_radius)) step.clamp_(-c.clip_radius, c.clip_radius);
  m.sub_(step * c.step_size);
}

}  // namespace kprior::optim::detail
