#pragma once
// Back-propagated layer signals: for a taped forward pass and R cotangent vectors per example
// (rows of the output space), t_l[n, r] = ∂(u_{n,r} · f(x_n)) / ∂z_l(x_n) for every recorded
// layer output z_l. With u = unit vectors these are the rows of the Jacobian before the outer
// product with the layer input (METHODS.md §2): J[n, k] for a Linear layer's weight is
// t_l[n, k] a_l[n]ᵀ, for its bias t_l[n, k]. One backward pass per row r.
#include <torch/types.h>

#include <functional>
#include <vector>

#include "kprior/nn/layer_tape.h"

namespace kprior::linearize {

/// Maps the logits [N, C_out] (detached) to cotangents [N, R, C_out].
using CotangentFn = std::function<torch::Tensor(const torch::Tensor& logits)>;

struct Signals {
  torch::Tensor logits;                // [N, C_out], detached
  std::vector<nn::TapeEntry> layers;   // the tape, inputs detached
  std::vector<torch::Tensor> t;        // per layer [N, R, <output shape without N>]
};

/// One forward pass with the tape, then R backward passes to the recorded layer outputs.
/// BatchNorm (if any) must be in eval mode and dropout off, or examples interact.
Signals backprop_signals(nn::TapedModule& model, const torch::Tensor& x,
                         const CotangentFn& cotangents);

/// Unit cotangents: row r selects output column columns[r] (Jacobian rows of a head).
CotangentFn unit_rows(const std::vector<int64_t>& columns);

}  // namespace kprior::linearize
