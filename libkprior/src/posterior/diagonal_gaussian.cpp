#include "kprior/posterior/diagonal_gaussian.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "kprior/core/error.h"

namespace kprior::posterior {

DiagonalGaussian::DiagonalGaussian(std::vector<torch::Tensor> mean,
                                   std::vector<torch::Tensor> variance, std::string source)
    : mean_(std::move(mean)), variance_(std::move(variance)), source_(std::move(source)) {
  if (mean_.size() != variance_.size()) {
    throw UsageError("DiagonalGaussian: " + std::to_string(mean_.size()) + " mean tensors but " +
                     std::to_string(variance_.size()) + " variance tensors");
  }
  for (size_t i = 0; i < mean_.size(); ++i) {
    if (!mean_[i].sizes().equals(variance_[i].sizes())) {
      throw UsageError("DiagonalGaussian: mean and variance shapes differ at tensor " +
                       std::to_string(i));
    }
    torch::NoGradGuard no_grad;
    const auto v = variance_[i];
    if (v.numel() > 0 && !(v.isfinite().all().item<bool>() && v.gt(0).all().item<bool>())) {
      throw UsageError("DiagonalGaussian: variance of tensor " + std::to_string(i) +
                       " must be finite and > 0");
    }
  }
}

int64_t DiagonalGaussian::numel() const {
  int64_t n = 0;
  for (const auto& m : mean_) n += m.numel();
  return n;
}

namespace {
torch::Tensor flatten(const std::vector<torch::Tensor>& parts) {
  if (parts.empty()) return torch::empty({0});
  std::vector<torch::Tensor> flat;
  flat.reserve(parts.size());
  for (const auto& p : parts) flat.push_back(p.detach().reshape(-1));
  return torch::cat(flat);
}
}  // namespace

torch::Tensor DiagonalGaussian::flat_mean() const { return flatten(mean_); }
torch::Tensor DiagonalGaussian::flat_variance() const { return flatten(variance_); }
torch::Tensor DiagonalGaussian::flat_precision() const { return flat_variance().reciprocal(); }

std::vector<torch::Tensor> DiagonalGaussian::sample(torch::Generator& generator) const {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  out.reserve(mean_.size());
  for (size_t i = 0; i < mean_.size(); ++i) {
    auto eps = torch::empty_like(mean_[i]).normal_(0.0, 1.0, generator);
    out.push_back(mean_[i] + variance_[i].sqrt() * eps);
  }
  return out;
}

torch::Generator seeded_generator(const torch::Device& device, uint64_t seed) {
  if (device.is_cpu()) return at::detail::createCPUGenerator(seed);
  auto gen = at::globalContext().defaultGenerator(device).clone();
  gen.set_current_seed(seed);
  return gen;
}

ScopedParameters::ScopedParameters(std::vector<torch::Tensor> params,
                                   const std::vector<torch::Tensor>& values)
    : params_(std::move(params)) {
  if (params_.size() != values.size()) {
    throw UsageError("ScopedParameters: " + std::to_string(values.size()) + " values for " +
                     std::to_string(params_.size()) + " parameters");
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].sizes().equals(values[i].sizes())) {
      throw UsageError("ScopedParameters: shape mismatch at parameter " + std::to_string(i));
    }
  }
  saved_.reserve(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    saved_.push_back(params_[i].detach().clone());
    params_[i].detach().copy_(values[i]);
  }
}

ScopedParameters::~ScopedParameters() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) params_[i].detach().copy_(saved_[i]);
}

torch::Tensor bma_probabilities(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                                const std::vector<torch::Tensor>& params,
                                const DiagonalGaussian& q, const torch::Tensor& inputs,
                                int64_t samples, torch::Generator& generator) {
  if (samples < 1) throw UsageError("bma_probabilities: samples must be >= 1, got " + std::to_string(samples));
  torch::NoGradGuard no_grad;
  torch::Tensor sum;
  for (int64_t s = 0; s < samples; ++s) {
    ScopedParameters at_sample(params, q.sample(generator));
    auto p = torch::softmax(forward(inputs), -1);
    sum = sum.defined() ? sum.add_(p) : p;
  }
  return sum.div_(static_cast<double>(samples));
}

}  // namespace kprior::posterior
