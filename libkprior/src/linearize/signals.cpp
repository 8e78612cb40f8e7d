#include "kprior/linearize/signals.h"

#include <torch/torch.h>

#include "kprior/core/error.h"

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
  std::vector<torch::Tensor> outputs;
  for (const auto& e : tape.entries()) outputs.push_back(e.output);
  const int64_t rows = cot.size(1);
  Signals s;
  s.logits = logits.detach();
  // t_l[n, r, ...] allocated once per layer; each backward pass writes its row in place
  // (no list of R gradients kept alive, no stacking copy).
  for (const auto& out : outputs) {
    auto shape = out.sizes().vec();
    shape.insert(shape.begin() + 1, rows);
    s.t.push_back(torch::empty(shape, out.options()));
  }
  for (int64_t r = 0; r < rows; ++r) {
    const auto grads = torch::autograd::grad({logits}, outputs,
                                             {cot.select(1, r).to(logits.dtype()).contiguous()},
                                             /*retain_graph=*/r + 1 < rows, /*create_graph=*/false,
                                             /*allow_unused=*/true);
    for (size_t l = 0; l < outputs.size(); ++l) {
      auto dst = s.t[l].select(1, r);
      if (grads[l].defined()) {
        dst.copy_(grads[l]);
      } else {
        dst.zero_();
      }
    }
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
