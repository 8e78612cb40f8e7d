#pragma once
// Per-example weight gradients of a convolution recorded together with its activation and max
// pooling (nn::tape_conv2d_pool). With y[o, p] = act(z[o, w(o, p)]), z = conv(x, W) and
// U = unfold(x) [K, L], the pooled output's Jacobian is the convolution's at the winner w(o, p)
// times the activation's slope there (METHODS.md §2, "efficient computation", applied to the
// pooled map): for signals t[r, o, p] = ∂f_r/∂y[o, p] and s = t · slope,
//   G[r, o, k] = Σ_p s[r, o, p] U[k, w(o, p)],        g_b[r, o] = Σ_p s[r, o, p].
// Only the winners enter: a quarter of the positions for 2×2 pooling.
#include <torch/types.h>

#include "kprior/nn/layer_tape.h"

namespace kprior::linearize::detail {

/// G [N, R, C_out·K] and g_b [N, R, C_out] (undefined without bias) for signals t [N, R, C_out,
/// H/k, W/k] at the pooled output of entry `e` (e.pooled()). On the CPU (float32/float64) one
/// fused pass over the winners; elsewhere pooled_conv_grads_dense.
std::pair<torch::Tensor, torch::Tensor> pooled_conv_grads(const nn::TapeEntry& e, const torch::Tensor& t);

/// The same through the full-size map: the signals scattered to their winners (what autograd's
/// max-pool backward does) and one GEMM per example against unfold(x). Any device; the
/// reference the fused CPU pass is tested against.
std::pair<torch::Tensor, torch::Tensor> pooled_conv_grads_dense(const nn::TapeEntry& e, const torch::Tensor& t);

/// The signals at the entry's input from those at its pooled output, t [N, R, C_out, H/k, W/k]
/// → [N, R, C_in, H_in, W_in]: the transposed convolution of the winners' signals s = t · slope,
///   ∂f_r/∂x[c, i] = Σ_{o, p} s[r, o, p] W[o, c, i − w(o, p)],
/// what autograd's backward through the pooling, the activation and the convolution gives,
/// with only the winners' multiply-adds. CPU float32/float64 (pooled_conv_fused says whether
/// it applies).
torch::Tensor pooled_conv_input_signals(const nn::TapeEntry& e, const torch::Tensor& t);

/// Whether the fused CPU passes apply to signals like `t` (CPU, float32 or float64).
bool pooled_conv_fused(const torch::Tensor& t);

}  // namespace kprior::linearize::detail
