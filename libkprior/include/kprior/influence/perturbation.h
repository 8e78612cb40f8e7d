#pragma once
// The memory-perturbation equation (Nickl et al., "The Memory-Perturbation Equation:
// Understanding Model's Sensitivity to Data", NeurIPS 2023; METHODS.md §5), in its per-example
// forms: how example i's own prediction moves when i is removed from the training data,
// from its prediction error e_i = ∇_f ℓ_i, its prediction variance V_i = J_i Σ J_iᵀ and (for
// the exact GLM form) its output curvature Λ_i = ∇²_f ℓ_i.
#include <torch/types.h>

#include <string>

namespace kprior::influence {

enum class Form {
  Diagonal,  ///< f^{∖i} − f_i ≈ diag(V_i) ⊙ e_i  (MPE eq. 5 with V's diagonal, as in practice)
  Full,      ///< f^{∖i} − f_i ≈ V_i e_i          (MPE eq. 5)
  GLM,       ///< f^{∖i} − f_i = V_i (I − Λ_i V_i)⁻¹ e_i: one Newton step of the GLM with i's
             ///< curvature removed; exact leave-one-out for linear regression (scalar: v e/(1 − λ v))
};

/// "diagonal", "full" or "glm" (throws kprior::UsageError otherwise), and back.
Form parse_form(const std::string& name);
std::string to_string(Form form);

/// Estimated f^{∖i} − f_i, [N, C]. `e` is [N, C]; `v` is the diagonal [N, C] for
/// Form::Diagonal and the full covariance [N, C, C] otherwise; `lambda` [N, C, C] is read by
/// Form::GLM only (may be undefined otherwise); the GLM form solves in float64 and gives NaN
/// for an example whose I − Λ_i V_i is singular. Throws kprior::UsageError on mismatched shapes.
torch::Tensor deviation(Form form, const torch::Tensor& v, const torch::Tensor& e,
                        const torch::Tensor& lambda = {});

/// For the GLM form: true [N] where Λ_i V_i has an eigenvalue >= 1, i.e. the downdated
/// precision Σ⁻¹ − J_iᵀ Λ_i J_i is not positive definite. That cannot happen with the exact
/// posterior of a GLM (Λ^½ V Λ^½ < I), but can with an approximate Σ (a diagonal one), and
/// there the GLM form's estimate is no leave-one-out estimate (it flips sign or explodes).
/// `v` and `lambda` are [N, C, C].
torch::Tensor glm_downdate_invalid(const torch::Tensor& v, const torch::Tensor& lambda);

}  // namespace kprior::influence
