#include "kprior/train/map_fit.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <sstream>

#include "kprior/core/error.h"
#include "kprior/data/batch_loader.h"
#include "kprior/linearize/linearize.h"
#include "kprior/optim/ivon.h"
#include "kprior/posterior/sources.h"

namespace kprior::train {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Cosine decay from lr to final_lr (Loshchilov & Hutter, ICLR 2017, without restarts).
double lr_at(const FitOptions& o, int64_t step, int64_t total) {
  if (o.final_lr() < 0 || total <= 1) return o.lr();
  const double t = static_cast<double>(step) / static_cast<double>(total - 1);
  return o.final_lr() + 0.5 * (o.lr() - o.final_lr()) * (1 + std::cos(kPi * t));
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& group : opt.param_groups()) group.options().set_lr(lr);
}

}  // namespace

void FitOptions::validate() const {
  if (!(lr() > 0)) throw UsageError("fit: the learning rate must be > 0");
  if (epochs() < 0) throw UsageError("fit: epochs must be >= 0");
  if (batch_size() <= 0) throw UsageError("fit: the batch size must be > 0");
  if (!(prior_precision() > 0)) throw UsageError("fit: the prior precision must be > 0");
  if (!(ivon_hess_init() > 0)) throw UsageError("fit: IVON's h0 must be > 0");
}

FitReport fit_map(nn::TapedModule& model, const data::Dataset& data,
                  const std::vector<int64_t>& columns, const FitOptions& options,
                  const std::function<void(int64_t, double)>& on_epoch) {
  options.validate();
  if (data.size() == 0) throw UsageError("fit: no training examples");
  const auto start = std::chrono::steady_clock::now();
  const double n = static_cast<double>(data.size());
  // IVON's ess is N and its weight decay δ/N: its posterior is then one of the same objective.
  auto opt = make_optimizer(model.parameters(), options.optimizer(),
                            optim::IVONOptions(options.lr(), n)
                                .hess_init(options.ivon_hess_init())
                                .weight_decay(options.prior_precision() / n)
                                .seed(options.seed()));
  auto* ivon = dynamic_cast<optim::IVON*>(opt.get());
  const auto params = model.parameters();
  const auto cols = torch::tensor(columns, torch::kLong).to(data.inputs.device());
  data::BatchLoader loader(data, options.batch_size(), true, options.seed());
  const int64_t total = options.epochs() * loader.num_batches();
  // IVON's weight decay already is δ/N; the others get the prior as a loss term.
  auto objective = [&](const data::Batch& b) {
    auto loss = torch::nn::functional::cross_entropy(model.forward(b.inputs).index_select(1, cols), b.targets);
    if (ivon == nullptr) {
      torch::Tensor sq = torch::zeros({}, loss.options());
      for (const auto& p : params) sq = sq + p.pow(2).sum();
      loss = loss + 0.5 * options.prior_precision() / n * sq;
    }
    return loss;
  };
  FitReport report;
  model.train();
  int64_t step = 0;
  for (int64_t e = 0; e < options.epochs(); ++e) {
    loader.set_epoch(e);
    double sum = 0;
    for (const auto& batch : loader) {
      set_lr(*opt, lr_at(options, step++, total));
      opt->zero_grad();
      torch::Tensor loss;
      if (ivon != nullptr) {
        auto sample = ivon->sampled_params(true);
        loss = objective(batch);
        loss.backward();
      } else {
        loss = objective(batch);
        loss.backward();
      }
      opt->step();
      sum += loss.item<double>();
    }
    const double mean = sum / static_cast<double>(loader.num_batches());
    report.epoch_loss.push_back(mean);
    if (on_epoch) on_epoch(e, mean);
    if (!std::isfinite(mean)) {
      model.eval();
      std::ostringstream lr;
      lr << options.lr();
      throw Error("training diverged in epoch " + std::to_string(e + 1) + " of " + std::to_string(options.epochs()) +
                  " (the loss is not finite at learning rate " + lr.str() + "); try a smaller learning rate");
    }
  }
  model.eval();
  if (ivon != nullptr) report.ivon_posterior = ivon->posterior();
  if (auto* adam = dynamic_cast<torch::optim::Adam*>(opt.get()); adam != nullptr && total > 0) {
    report.adam_posterior = posterior::from_adam_moments(
        params, posterior::adam_second_moments(*adam, params), n, options.prior_precision());
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

posterior::DiagonalGaussian laplace_posterior(nn::TapedModule& model, const data::Dataset& data,
                                              const std::vector<int64_t>& columns,
                                              double prior_precision) {
  const auto ggn = linearize::curvature_diagonal(model, data.inputs, data.targets, columns,
                                                 linearize::Curvature::GGN, 1024);
  return posterior::laplace(model.parameters(), ggn, prior_precision);
}

FitQuality quality_of(const torch::Tensor& logits, const torch::Tensor& targets) {
  if (logits.size(0) == 0) throw UsageError("evaluate: no examples");
  const auto y = targets.to(torch::kLong).to(logits.device());
  FitQuality q;
  q.nll = torch::nn::functional::cross_entropy(logits.to(torch::kFloat64), y).item<double>();
  q.accuracy = logits.argmax(1).eq(y).to(torch::kFloat64).mean().item<double>();
  return q;
}

FitQuality evaluate_fit(nn::TapedModule& model, const data::Dataset& data,
                        const std::vector<int64_t>& columns) {
  torch::NoGradGuard no_grad;
  model.eval();
  const auto cols = torch::tensor(columns, torch::kLong).to(data.inputs.device());
  std::vector<torch::Tensor> parts;
  for (int64_t s = 0; s < data.size(); s += 4096) {
    parts.push_back(model.forward(data.inputs.slice(0, s, s + 4096)).index_select(1, cols));
  }
  if (parts.empty()) throw UsageError("evaluate: no examples");
  return quality_of(torch::cat(parts, 0), data.targets);
}

}  // namespace kprior::train
