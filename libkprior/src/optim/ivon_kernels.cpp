#include "ivon_kernels.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

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
      at::parallel_for(0, p.numel(), kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          sp[i] = pp[i];
          pp[i] = pp[i] + ep[i] / std::sqrt(lam * (hp[i] + wd));
        }
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
      for (int64_t c = first_chunk; c < last_chunk; ++c) {
        SplitMix64 rng(mix_seed(stream, static_cast<uint64_t>(c)));
        const int64_t end = std::min(n, (c + 1) * kNoiseChunk);
        for (int64_t i = c * kNoiseChunk; i < end; ++i) {
          const auto eps = static_cast<scalar_t>(standard_normal(rng));
          sp[i] = pp[i];
          pp[i] = pp[i] + eps / std::sqrt(lam * (hp[i] + wd));
        }
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
      at::parallel_for(0, p.numel(), kGrain, [&](int64_t begin, int64_t end) {
        if (first) {
          for (int64_t i = begin; i < end; ++i) {
            const scalar_t gi = gp[i];
            gs[i] = gi;
            ns[i] = gradsq ? gi * gi : (pp[i] - sp[i]) * gi;
            pp[i] = sp[i];
          }
        } else {
          for (int64_t i = begin; i < end; ++i) {
            const scalar_t gi = gp[i];
            gs[i] += gi;
            ns[i] += gradsq ? gi * gi : (pp[i] - sp[i]) * gi;
            pp[i] = sp[i];
          }
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

void update_param(const torch::Tensor& m, const torch::Tensor& momentum, const torch::Tensor& hess,
                  const torch::Tensor& grad_sum, const torch::Tensor& nxg_sum,
                  const UpdateConstants& c, bool fused) {
  if (fused) {
    AT_DISPATCH_FLOATING_TYPES(m.scalar_type(), "ivon_update", [&] {
      auto* mp = m.data_ptr<scalar_t>();
      auto* gp = momentum.data_ptr<scalar_t>();
      auto* hp = hess.data_ptr<scalar_t>();
      auto* gs = grad_sum.data_ptr<scalar_t>();
      auto* ns = nxg_sum.data_ptr<scalar_t>();
      const auto b1 = static_cast<scalar_t>(c.beta1), b2 = static_cast<scalar_t>(c.beta2);
      const auto lam = static_cast<scalar_t>(c.ess), wd = static_cast<scalar_t>(c.weight_decay);
      const auto rho = static_cast<scalar_t>(c.clip_radius);
      const auto alpha = static_cast<scalar_t>(c.step_size);
      const auto inv_b = static_cast<scalar_t>(1.0 / c.debias);
      const auto inv_k = static_cast<scalar_t>(c.inv_samples);
      const auto half_sq = static_cast<scalar_t>(0.5 * (1.0 - c.beta2) * (1.0 - c.beta2));
      const bool gradsq = c.gradsq;
      at::parallel_for(0, m.numel(), kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const scalar_t gbar = gs[i] * inv_k;
          const scalar_t nu = ns[i] * inv_k;
          const scalar_t h = hp[i];
          // 1. momentum
          const scalar_t g = b1 * gp[i] + (1 - b1) * gbar;
          // 2. Hessian estimate (old h): price ĥ = λ ν (h + δ); gradsq ĥ = λ mean(ĝ²)
          const scalar_t hhat = gradsq ? lam * nu : lam * nu * (h + wd);
          // 3. Hessian update with the correction term that keeps h + δ > 0
          const scalar_t d = h - hhat;
          const scalar_t hn = b2 * h + (1 - b2) * hhat + half_sq * d * d / (h + wd);
          // 5. preconditioned, clipped step of the mean (new g, new h)
          scalar_t step = (g * inv_b + wd * mp[i]) / (hn + wd);
          step = std::min(std::max(step, -rho), rho);
          mp[i] -= alpha * step;
          gp[i] = g;
          hp[i] = hn;
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
