#pragma once
// Global gradient-norm clipping without a device sync.
#include <torch/types.h>

#include <vector>

namespace kprior::optim {

/// Scales the gradients of `params` by min(1, max_norm / (‖g‖ + 1e-6)), ‖g‖ the 2-norm of all
/// of them together: torch::nn::utils::clip_grad_norm_'s rule and arithmetic. That function
/// returns the norm as a double, which on a GPU waits for every queued kernel each step; this
/// one keeps the norm and the coefficient on the device. Parameters without a gradient are
/// skipped. Returns the norm (a 0-dim tensor on the gradients' device; undefined if none).
torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace kprior::optim
