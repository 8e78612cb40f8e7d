#include "kprior/posterior/sources.h"

#include <torch/torch.h>
#include <torch/version.h>

#include "kprior/core/error.h"

namespace kprior::posterior {
namespace {

void check_aligned(const std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>& other,
                   const char* what) {
  if (params.size() != other.size()) {
    throw UsageError(std::string(what) + ": " + std::to_string(other.size()) + " tensors for " +
                     std::to_string(params.size()) + " parameters");
  }
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].sizes().equals(other[i].sizes())) {
      throw UsageError(std::string(what) + ": shape mismatch at parameter " + std::to_string(i));
    }
  }
}

std::vector<torch::Tensor> means_of(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> m;
  for (const auto& p : params) m.push_back(p.detach().clone());
  return m;
}

}  // namespace

DiagonalGaussian laplace(const std::vector<torch::Tensor>& params,
                         const std::vector<torch::Tensor>& curvature, double prior_precision) {
  check_aligned(params, curvature, "laplace");
  if (!(prior_precision > 0)) throw UsageError("laplace: prior precision must be > 0");
  std::vector<torch::Tensor> var;
  for (const auto& c : curvature) var.push_back((c.detach().clamp_min(0) + prior_precision).reciprocal());
  return {means_of(params), std::move(var), "laplace"};
}

DiagonalGaussian from_adam_moments(const std::vector<torch::Tensor>& params,
                                   const std::vector<torch::Tensor>& second_moments,
                                   double data_size, double prior_precision) {
  check_aligned(params, second_moments, "from_adam_moments");
  if (!(data_size > 0) || !(prior_precision > 0)) {
    throw UsageError("from_adam_moments: data size and prior precision must be > 0");
  }
  std::vector<torch::Tensor> var;
  for (const auto& v : second_moments) {
    var.push_back((v.detach().clamp_min(0).sqrt() * data_size + prior_precision).reciprocal());
  }
  return {means_of(params), std::move(var), "adam"};
}

std::vector<torch::Tensor> adam_second_moments(torch::optim::Adam& adam,
                                               const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> out;
  for (const auto& p : params) {
    // The state map is keyed by a string in LibTorch 1.13 and by the TensorImpl pointer in 2.x.
#if TORCH_VERSION_MAJOR >= 2
    const auto key = p.unsafeGetTensorImpl();
#else
    const auto key = c10::guts::to_string(p.unsafeGetTensorImpl());
#endif
    auto it = adam.state().find(key);
    if (it == adam.state().end()) {
      throw Error("adam_second_moments: a parameter has no Adam state (run at least one step)");
    }
    out.push_back(static_cast<torch::optim::AdamParamState&>(*it->second).exp_avg_sq());
  }
  return out;
}

}  // namespace kprior::posterior
