#include "kprior/influence/perturbation.h"

#include <torch/torch.h>

#include <limits>

#include "kprior/core/error.h"

namespace kprior::influence {

Form parse_form(const std::string& name) {
  if (name == "diagonal") return Form::Diagonal;
  if (name == "full") return Form::Full;
  if (name == "glm") return Form::GLM;
  throw UsageError("unknown perturbation form '" + name + "' (expected diagonal, full or glm)");
}

std::string to_string(Form form) {
  switch (form) {
    case Form::Diagonal: return "diagonal";
    case Form::Full: return "full";
    case Form::GLM: return "glm";
  }
  return "?";
}

torch::Tensor deviation(Form form, const torch::Tensor& v, const torch::Tensor& e,
                        const torch::Tensor& lambda) {
  if (e.dim() != 2) throw UsageError("deviation: e must be [N, C]");
  if (form == Form::Diagonal) {
    if (!v.sizes().equals(e.sizes())) throw UsageError("deviation: diagonal v must be [N, C] like e");
    return v * e;
  }
  const auto n = e.size(0), c = e.size(1);
  if (!v.sizes().equals({n, c, c})) throw UsageError("deviation: v must be [N, C, C]");
  if (form == Form::Full) return torch::bmm(v, e.unsqueeze(2)).squeeze(2);
  if (!lambda.defined() || !lambda.sizes().equals({n, c, c})) {
    throw UsageError("deviation: the GLM form needs Λ [N, C, C]");
  }
  // V (I − Λ V)⁻¹ e (Woodbury on Σ^{∖i} = (Σ⁻¹ − Jᵀ Λ J)⁻¹; METHODS.md §5). Solving
  // (I − Λ V) z = e avoids forming the inverse; in float64, since I − Λ V is near singular
  // exactly where an example dominates its own fit. A singular system (an eigenvalue of Λ V
  // at 1: no downdated posterior) gives NaN for that example, not an error for all of them.
  const auto v64 = v.to(torch::kFloat64), e64 = e.to(torch::kFloat64);
  const auto eye = torch::eye(c, v64.options()).expand({n, c, c});
  const auto [z, info] = torch::linalg_solve_ex(eye - torch::bmm(lambda.to(torch::kFloat64), v64), e64.unsqueeze(2));
  auto out = torch::bmm(v64, z).squeeze(2);
  out.masked_fill_((info != 0).unsqueeze(1), std::numeric_limits<double>::quiet_NaN());
  return out.to(e.dtype());
}

torch::Tensor glm_downdate_invalid(const torch::Tensor& v, const torch::Tensor& lambda) {
  if (v.dim() != 3 || !v.sizes().equals(lambda.sizes()) || v.size(1) != v.size(2)) {
    throw UsageError("glm_downdate_invalid: v and Λ must both be [N, C, C]");
  }
  // Λ V is a product of two positive semi-definite matrices: its eigenvalues are those of
  // Λ^½ V Λ^½, real and >= 0 (the imaginary parts LAPACK returns are rounding).
  const auto eig = torch::real(torch::linalg_eigvals(torch::bmm(lambda, v).to(torch::kFloat64)));
  return std::get<0>(eig.max(1)) >= 1.0;
}

}  // namespace kprior::influence
