#pragma once
// Per-example sensitivities of a trained classifier (MPE, Nickl et al., NeurIPS 2023, §3;
// METHODS.md §5): for every training example its logits f_i, prediction error e_i = p_i − y_i,
// prediction variance V_i = J_i Σ J_iᵀ and the estimated leave-one-out deviation
// f^{∖i} − f_i, streamed over the data in batches (memory independent of N). Built on the
// linearization engine; Σ is any diagonal posterior (IVON, diagonal GGN Laplace, Adam).
#include <torch/types.h>

#include <vector>

#include "kprior/influence/perturbation.h"
#include "kprior/nn/layer_tape.h"

namespace kprior::influence {

struct Sensitivities {
  torch::Tensor logits;     ///< [N, C] f_i over the head
  torch::Tensor residual;   ///< [N, C] e_i = p_i − onehot(y_i)
  torch::Tensor variance;   ///< [N, C] diag V_i
  torch::Tensor deviation;  ///< [N, C] estimated f_i^{∖i} − f_i (see Form)
  torch::Tensor nll;        ///< [N] −log p_i(y_i), at the trained weights
  torch::Tensor loo_nll;    ///< [N] −log softmax(f_i + deviation_i)_{y_i}: estimated NLL of i
                            ///<     once i is removed (MPE's leave-one-out estimate)
  torch::Tensor glm_invalid;  ///< [N] bool, Form::GLM only (else undefined): glm_downdate_invalid
};

/// Sensitivities of the examples (x, targets) — targets are positions in `columns` — under
/// the diagonal posterior `variances` (per-parameter, aligned with model.parameters()) at the
/// model's current weights (the posterior mean), in eval mode (as the Jacobians). Throws
/// kprior::UsageError on mismatched shapes or targets outside the head.
Sensitivities sensitivities(nn::TapedModule& model, const torch::Tensor& x,
                            const torch::Tensor& targets, const std::vector<int64_t>& columns,
                            const std::vector<torch::Tensor>& variances, Form form = Form::Diagonal,
                            int64_t batch_size = 1024);

/// Estimated leave-one-out NLL of the whole set: (1/N) Σ_i loo_nll_i (METHODS.md §5), over
/// the examples that have an estimate (a finite loo_nll; a singular GLM-form solve gives
/// none); NaN if none has.
double loo_nll_estimate(const Sensitivities& s);

/// The examples without an estimate: a non-finite loo_nll.
int64_t without_estimate(const Sensitivities& s);

/// Influence of each example on its own fit: the estimated rise of its NLL when it is
/// removed, loo_nll − nll [N] (large = the model depends on this example to predict it).
torch::Tensor self_influence(const Sensitivities& s);

/// The k examples of largest self_influence, largest first; ties by lower index. k is
/// clamped to N.
std::vector<int64_t> top_influential(const Sensitivities& s, int64_t k);

/// Estimated probabilities after removing each example from the data: softmax(f_i + Δf_i).
torch::Tensor perturbed_probabilities(const Sensitivities& s);

/// The publication's estimate of how far each example's softmax output moves when it is
/// removed, in L1 [N]: Σ_k |e_ik λ_ik v_ik| with λ_ik = p_ik(1 − p_ik) (Nickl et al., NeurIPS
/// 2023, the sensitivities of its Fig. 2 and `3_validation_sensitivities.py`): the diagonal-form
/// logit shift v ⊙ e through the diagonal of the softmax Jacobian, whatever form `s` was
/// computed with. With the diagonal form, perturbed_probabilities − softmax(f) is the same
/// logit shift through the whole softmax (off-diagonal terms and curvature included); with the
/// full or GLM form it is that form's shift.
torch::Tensor linearized_softmax_l1(const Sensitivities& s);

}  // namespace kprior::influence
