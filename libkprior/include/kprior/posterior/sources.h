#pragma once
// Diagonal posteriors from sources other than IVON (METHODS.md §2, "posterior sources"):
// a diagonal Laplace approximation from a curvature diagonal, and Adam's second moment.
#include <torch/optim/adam.h>
#include <torch/types.h>

#include <vector>

#include "kprior/posterior/diagonal_gaussian.h"

namespace kprior::posterior {

/// Laplace: Σ = 1 / (curvature + δ) per parameter, mean = the parameters (a MAP estimate).
/// `curvature` is e.g. linearize::curvature_diagonal(..., Curvature::GGN) — a sum over the
/// training set, so δ is the prior precision of the summed loss. Source "laplace".
DiagonalGaussian laplace(const std::vector<torch::Tensor>& params,
                         const std::vector<torch::Tensor>& curvature, double prior_precision);

/// From Adam's moments (Khan et al., "Fast and scalable Bayesian deep learning by
/// weight-perturbation in Adam", ICML 2018): Σ = 1 / (N √v + δ) with v the second-moment
/// estimate. Source "adam".
DiagonalGaussian from_adam_moments(const std::vector<torch::Tensor>& params,
                                   const std::vector<torch::Tensor>& second_moments,
                                   double data_size, double prior_precision);

/// Reads the second moments (exp_avg_sq) of `params` from a torch::optim::Adam after at least
/// one step; throws kprior::Error if a parameter has no state yet.
std::vector<torch::Tensor> adam_second_moments(torch::optim::Adam& adam,
                                               const std::vector<torch::Tensor>& params);

}  // namespace kprior::posterior
