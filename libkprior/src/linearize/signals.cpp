#include "kprior/linearize/signals.h"

#include <torch/torch.h>

#include "kprior/core/error.h"
#include "pooled_conv.h"

namespace kprior::linearize {

Signals backprop_signals(nn::TapedModule& model, const torch::Tensor& x,
                         const CotangentFn& cotangents) {
  torch::AutoGradMode grad_on(true);
  // Per-example linearization needs per-example outputs: dropout off and BatchNorm on its
  // running statistics, whatever mode the caller left the model in (restored on return).
  nn::EvalModeGuard eval_mode(model);
  nn::LayerTape tape;
  // An input on the graph guarantees the layer outputs are too, even with frozen weights.
  const auto logits = model.forward_taped(x.detach().requires_grad_(true), &tape);
  if (logits.dim() != 2) throw UsageError("linearize: the model must return logits [N, C]");
  if (tape.entries().empty()) throw UsageError("linearize: the model recorded no layer on its tape");
  const auto cot = cotangents(logits.detach());
  if (cot.dim() != 3 || cot.size(0) != logits.size(0) || cot.size(2) != logits.size(1)) {
    throw UsageError("linearize: cotangents must be [N, R, C_out]");
  }
  // A layer whose output feeds only the next, pooled, convolution gets its signals from that
  // convolution's by detail::pooled_conv_input_signals (on the CPU), not from autograd, which
  // then stops at the later layer.
  const auto& entries = tape.entries();
  std::vector<bool> derived(entries.size(), false);
  for (size_t k = 1; k < entries.size(); ++k) {
    derived[k - 1] = entries[k].pooled() && entries[k].input_from_previous && detail::pooled_conv_fused(logits);
  }
  std::vector<torch::Tensor> outputs;
  std::vector<size_t> slot;  // tape index of each autograd output
  for (size_t k = 0; k < entries.size(); ++k) {
    if (derived[k]) continue;
    outputs.push_back(entries[k].output);
    slot.push_back(k);
  }
  const int64_t rows = cot.size(1);
  Signals s;
  s.logits = logits.detach();
  // t_l[n, r, ...] allocated once per layer; each backward pass writes its row in place
  // (no list of R gradients kept alive, no stacking copy).
  s.t.resize(entries.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    auto shape = outputs[i].sizes().vec();
    shape.insert(shape.begin() + 1, rows);
    s.t[slot[i]] = torch::empty(shape, outputs[i].options());
  }
  for (int64_t r = 0; r < rows; ++r) {
    const auto grads = torch::autograd::grad({logits}, outputs,
                                             {cot.select(1, r).to(logits.dtype()).contiguous()},
                                             /*retain_graph=*/r + 1 < rows, /*create_graph=*/false,
                                             /*allow_unused=*/true);
    for (size_t l = 0; l < outputs.size(); ++l) {
      auto dst = s.t[slot[l]].select(1, r);
      if (grads[l].defined()) {
        dst.copy_(grads[l]);
      } else {
        dst.zero_();
      }
    }
  }
  for (size_t k = entries.size(); k-- > 1;) {
    if (derived[k - 1]) s.t[k - 1] = detail::pooled_conv_input_signals(entries[k], s.t[k]);
  }
  for (const auto& entry : tape.entries()) {
    nn::TapeEntry e = entry;
    e.input = e.input.detach();
    e.output = e.output.detach();
    s.layers.push_back(std::move(e));
  }
  return s;
}

CotangentFn unit_rows(const std::vector<int64_t>& columns) {
  return [columns](const torch::Tensor& logits) {
    const int64_t n = logits.size(0), c_out = logits.size(1);
    auto cot = torch::zeros({n, static_cast<int64_t>(columns.size()), c_out}, logits.options());
    for (size_t r = 0; r < columns.size(); ++r) {
      if (columns[r] < 0 || columns[r] >= c_out) {
        throw UsageError("linearize: output column " + std::to_string(columns[r]) +
                         " outside [0, " + std::to_string(c_out) + ")");
      }
      cot.select(1, static_cast<int64_t>(r)).select(1, columns[r]).fill_(1.0);
    }
    return cot;
  };
}

}  // namespace kprior::linearize
