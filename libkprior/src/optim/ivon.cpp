#include "kprior/optim/ivon.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <exception>

#include "ivon_kernels.h"
#include "kprior/core/error.h"
#include "kprior/core/random.h"

namespace kprior::optim {

namespace {

constexpr int64_t kFormatVersion = 1;

void require(bool ok, const std::string& message) {
  if (!ok) throw UsageError("IVONOptions: " + message);
}

std::string key(size_t group, size_t param, const std::string& what) {
  return "ivon/group" + std::to_string(group) + "/param" + std::to_string(param) + "/" + what;
}

torch::Tensor read_tensor(torch::serialize::InputArchive& archive, const std::string& name) {
  torch::Tensor t;
  if (!archive.try_read(name, t)) {
    throw Error("IVON::load: the archive has no '" + name + "' (not an IVON state, or saved " +
                "for different parameter groups)");
  }
  return t;
}

}  // namespace

// ---- options ------------------------------------------------------------------------------

IVONOptions::IVONOptions(double lr, double ess) : lr_(lr), ess_(ess) {}

void IVONOptions::validate() const {
  require(std::isfinite(lr_) && lr_ > 0, "lr must be > 0, got " + std::to_string(lr_));
  require(std::isfinite(ess_) && ess_ > 0,
          "ess must be > 0 (set it to the training-set size), got " + std::to_string(ess_));
  require(std::isfinite(hess_init_) && hess_init_ > 0,
          "hess_init must be > 0, got " + std::to_string(hess_init_));
  require(beta1_ >= 0 && beta1_ <= 1, "beta1 must be in [0, 1], got " + std::to_string(beta1_));
  require(beta2_ >= 0 && beta2_ <= 1, "beta2 must be in [0, 1], got " + std::to_string(beta2_));
  require(!(beta1_ == 1 && debias_),
          "beta1 = 1 with debias divides by 1 - beta1^t = 0; set debias(false) or beta1 < 1");
  require(std::isfinite(weight_decay_) && weight_decay_ >= 0,
          "weight_decay must be >= 0, got " + std::to_string(weight_decay_));
  require(clip_radius_ > 0, "clip_radius must be > 0 (+inf disables clipping), got " +
                                std::to_string(clip_radius_));
  require(mc_samples_ >= 1, "mc_samples must be >= 1, got " + std::to_string(mc_samples_));
}

// ---- sample guard --------------------------------------------------------------------------

SampleGuard::SampleGuard(IVON* owner, bool train)
    : owner_(owner), train_(train), uncaught_(std::uncaught_exceptions()) {
  owner_->begin_sample(train);
}

SampleGuard::SampleGuard(SampleGuard&& other) noexcept
    : owner_(other.owner_), train_(other.train_), uncaught_(other.uncaught_) {
  other.owner_ = nullptr;
}

SampleGuard::~SampleGuard() {
  if (owner_ == nullptr) return;
  // Record only when the scope ended normally: a sample whose forward or backward threw has
  // no valid gradient, but the mean must be restored either way.
  const bool record = train_ && std::uncaught_exceptions() == uncaught_;
  owner_->end_sample(record);
}

// ---- optimizer -----------------------------------------------------------------------------

IVON::IVON(std::vector<torch::optim::OptimizerParamGroup> groups, IVONOptions defaults)
    : Optimizer(std::move(groups), std::make_unique<IVONOptions>(defaults)) {
  defaults.validate();
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    auto* opts = dynamic_cast<IVONOptions*>(&param_groups_[g].options());
    if (opts == nullptr) {
      throw UsageError("IVON: parameter group " + std::to_string(g) + " has non-IVON options");
    }
    opts->validate();
  }
  ensure_state();
}

IVON::IVON(std::vector<torch::Tensor> params, IVONOptions defaults)
    : IVON(std::vector<torch::optim::OptimizerParamGroup>{
               torch::optim::OptimizerParamGroup(std::move(params))},
           std::move(defaults)) {}

const IVONOptions& IVON::global() const { return static_cast<const IVONOptions&>(defaults()); }

const IVONOptions& IVON::group_options(size_t group) const {
  return static_cast<const IVONOptions&>(param_groups_[group].options());
}

void IVON::ensure_state() const {
  torch::NoGradGuard no_grad;
  state_by_group_.resize(param_groups_.size());
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    const auto& params = param_groups_[g].params();
    auto& states = state_by_group_[g];
    const double h0 = group_options(g).hess_init();
    for (size_t j = 0; j < states.size() && j < params.size(); ++j) {
      // A parameter moved (model->to(...)) since its state was made: the state follows, as
      // load() places it, instead of mixing dtypes or devices in the update.
      auto& s = states[j];
      const auto& p = params[j];
      if (!sampling_ && (s.hess.scalar_type() != p.scalar_type() || s.hess.device() != p.device())) {
        for (torch::Tensor* t : {&s.momentum, &s.hess, &s.grad_sum, &s.nxg_sum}) {
          *t = t->to(p.device(), p.scalar_type());
        }
        s.saved_mean = torch::Tensor();  // made again, like the parameter, at the next sample
      }
    }
    for (size_t j = states.size(); j < params.size(); ++j) {
      // State in the parameter's layout (contiguous for contiguous parameters; channels-last
      // for channels-last weights), so the multi-tensor ops keep their fast path.
      const auto& p = params[j];
      ParamState s;
      s.momentum = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      s.hess = torch::full_like(p, h0, torch::MemoryFormat::Preserve);
      s.grad_sum = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      s.nxg_sum = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      states.push_back(std::move(s));
    }
  }
}

void IVON::ensure_generator(const torch::Device& device) {
  // One generator per optimizer on the parameters' device, independent of the global one.
  if (!generator_.has_value()) generator_ = posterior::seeded_generator(device, global().seed());
}

torch::Tensor IVON::draw_noise(size_t group, size_t param, const torch::Tensor& like) {
  auto eps = global().noise()(group, param, like);
  if (!eps.defined() || !eps.sizes().equals(like.sizes())) {
    throw UsageError("IVON: the noise source returned a tensor of the wrong shape for group " +
                     std::to_string(group) + ", parameter " + std::to_string(param));
  }
  return eps.to(like.options());
}

namespace {

// A view of like.numel() elements of `flat` from `offset` on, laid out like `like` (same strides
// when `like` is dense, so the multi-tensor ops see matching layouts).
torch::Tensor view_like(const torch::Tensor& flat, int64_t offset, const torch::Tensor& like) {
  if (like.is_non_overlapping_and_dense()) {
    return flat.as_strided(like.sizes(), like.strides(), flat.storage_offset() + offset);
  }
  return flat.narrow(0, offset, like.numel()).view(like.sizes());
}

}  // namespace

void IVON::draw_noise_flat(const std::vector<torch::Tensor*>& params,
                           const std::vector<torch::Tensor*>& eps) {
  // One normal_ over all elements of each (device, dtype) bucket, split into views: one
  // kernel instead of one per parameter. The stream is the seeded generator's.
  std::vector<bool> done(params.size(), false);
  for (size_t first = 0; first < params.size(); ++first) {
    if (done[first]) continue;
    const auto device = params[first]->device();
    const auto dtype = params[first]->scalar_type();
    std::vector<size_t> bucket;
    int64_t total = 0;
    for (size_t i = first; i < params.size(); ++i) {
      if (!done[i] && params[i]->device() == device && params[i]->scalar_type() == dtype) {
        bucket.push_back(i);
        total += params[i]->numel();
        done[i] = true;
      }
    }
    ensure_generator(device);
    auto flat = torch::empty({total}, torch::TensorOptions().dtype(dtype).device(generator_->device()))
                    .normal_(0.0, 1.0, *generator_);
    if (flat.device() != device) flat = flat.to(device);
    int64_t offset = 0;
    for (size_t i : bucket) {
      *eps[i] = view_like(flat, offset, *params[i]);
      offset += params[i]->numel();
    }
  }
}

SampleGuard IVON::sampled_params(bool train) { return SampleGuard(this, train); }

void IVON::begin_sample(bool train) {
  if (sampling_) {
    throw Error("IVON::sampled_params: a sample is already active; destroy its guard first");
  }
  ensure_state();
  torch::NoGradGuard no_grad;
  const auto& glob = global();
  const bool user_noise = static_cast<bool>(glob.noise());
  // Parameters for the multi-tensor path, per group; their noise is drawn after the loop.
  struct Lists {
    detail::TensorVec p, saved, hess, eps;
    std::vector<size_t> index;
  };
  std::vector<Lists> lists(param_groups_.size());
  std::vector<std::pair<size_t, size_t>> written;
  uint64_t index = 0;  // position of the parameter across groups
  try {
    detail::TensorVec grads;
    for (size_t g = 0; g < param_groups_.size(); ++g) {
      const auto& opts = group_options(g);
      auto& params = param_groups_[g].params();
      for (size_t j = 0; j < params.size(); ++j, ++index) {
        auto& p = params[j];
        if (!p.requires_grad()) continue;  // frozen parameters are never perturbed
        if (p.grad().defined()) grads.push_back(p.grad());
        auto& s = state_by_group_[g][j];
        if (!s.saved_mean.defined() || !s.saved_mean.sizes().equals(p.sizes()) ||
            !s.saved_mean.strides().equals(p.strides())) {
          s.saved_mean = torch::empty_like(p, torch::MemoryFormat::Preserve);
        }
        auto data = p.detach();
        const bool fused = glob.fused_cpu() && detail::fusable(data, s.saved_mean, s.hess);
        // A user's noise source is called in parameter order, whichever path takes the sample.
        auto eps = user_noise ? draw_noise(g, j, p) : torch::Tensor();
        if (fused && !user_noise) {
          // Counter-based noise: a stream per (seed, sample, parameter), no generator state.
          const uint64_t stream = mix_seed(mix_seed(glob.seed(), noise_draws_), index);
          detail::write_sample_streamed(data, s.saved_mean, s.hess, stream, opts.ess(),
                                        opts.weight_decay());
          written.emplace_back(g, j);
        } else if (fused) {
          detail::write_sample_fused(data, s.saved_mean, s.hess, eps, opts.ess(),
                                     opts.weight_decay());
          written.emplace_back(g, j);
        } else {
          auto& l = lists[g];
          l.p.push_back(data);
          l.saved.push_back(s.saved_mean);
          l.hess.push_back(s.hess);
          l.eps.push_back(eps);
          l.index.push_back(j);
        }
      }
    }
    // A training sample's gradient alone will be in .grad: zero them (one multi-tensor op).
    // A prediction sample (train = false) leaves the gradients alone, as the published code.
    if (train && !grads.empty()) at::_foreach_zero_(grads);
    if (!user_noise) {
      std::vector<torch::Tensor*> ps, es;
      for (auto& l : lists) {
        for (size_t i = 0; i < l.p.size(); ++i) {
          ps.push_back(&l.p[i]);
          es.push_back(&l.eps[i]);
        }
      }
      draw_noise_flat(ps, es);
    }
    for (size_t g = 0; g < lists.size(); ++g) {
      detail::copy_all(lists[g].saved, lists[g].p);  // saved ← m
      for (size_t j : lists[g].index) written.emplace_back(g, j);
    }
    for (size_t g = 0; g < lists.size(); ++g) {
      const auto& opts = group_options(g);
      detail::add_noise_foreach(lists[g].p, lists[g].hess, lists[g].eps, opts.ess(),
                                opts.weight_decay());
    }
  } catch (...) {
    for (auto [g, j] : written) {
      param_groups_[g].params()[j].detach().copy_(state_by_group_[g][j].saved_mean);
    }
    throw;
  }
  ++noise_draws_;
  sampling_ = true;
}

void IVON::end_sample(bool record) {
  torch::NoGradGuard no_grad;
  const auto& glob = global();
  const bool gradsq = glob.hess_approx() == HessApprox::GradSq;
  const bool first = samples_ == 0;
  detail::TensorVec restore_p, restore_saved;  // parameters that only get m back
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    auto& params = param_groups_[g].params();
    auto& states = state_by_group_[g];
    detail::TensorVec p, saved, grads, grad_sum, nxg_sum;
    std::vector<size_t> index;
    for (size_t j = 0; j < params.size() && j < states.size(); ++j) {
      auto& param = params[j];
      if (!param.requires_grad()) continue;
      auto& s = states[j];
      auto data = param.detach();
      const bool fused = record && glob.fused_cpu() &&
                         detail::fusable(data, s.grad_sum, s.nxg_sum) &&
                         detail::fusable(data, s.saved_mean, s.saved_mean);
      if (fused) {
        detail::record_and_restore_fused(data, s.saved_mean, param.grad(), s.grad_sum, s.nxg_sum,
                                         gradsq, first);
        continue;
      }
      if (record && param.grad().defined()) {
        p.push_back(data);
        saved.push_back(s.saved_mean);
        grads.push_back(param.grad());
        grad_sum.push_back(s.grad_sum);
        nxg_sum.push_back(s.nxg_sum);
        index.push_back(j);
        continue;
      }
      if (record && first) {  // no gradient reached this parameter: ĝ = 0
        s.grad_sum.zero_();
        s.nxg_sum.zero_();
      }
      restore_p.push_back(data);
      restore_saved.push_back(s.saved_mean);
    }
    detail::record_and_restore_foreach(p, saved, grads, grad_sum, nxg_sum, gradsq, first);
    for (size_t i = 0; i < index.size(); ++i) states[index[i]].nxg_sum = nxg_sum[i];
  }
  detail::copy_all(restore_p, restore_saved);
  if (record) ++samples_;
  sampling_ = false;
}

void IVON::update() {
  if (sampling_) throw Error("IVON::step: called while a sample is active (inside its guard)");
  if (samples_ == 0) {
    throw Error("IVON::step: no sample since the last step; run the forward and backward "
                "inside `auto s = opt.sampled_params(true);` or call step(closure)");
  }
  ensure_state();
  ++step_count_;
  torch::NoGradGuard no_grad;
  const auto& glob = global();
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    const auto& o = group_options(g);
    detail::UpdateConstants c{};
    c.beta1 = o.beta1();
    c.beta2 = o.beta2();
    c.ess = o.ess();
    c.weight_decay = o.weight_decay();
    c.clip_radius = o.clip_radius();
    c.step_size = glob.rescale_lr() ? o.lr() * (o.hess_init() + o.weight_decay()) : o.lr();
    c.debias = glob.debias() ? 1.0 - std::pow(o.beta1(), static_cast<double>(step_count_)) : 1.0;
    c.inv_samples = 1.0 / static_cast<double>(samples_);
    c.gradsq = glob.hess_approx() == HessApprox::GradSq;
    auto& params = param_groups_[g].params();
    detail::TensorVec m, momentum, hess, grad_sum, nxg_sum;  // the multi-tensor path
    for (size_t j = 0; j < params.size(); ++j) {
      if (!params[j].requires_grad()) continue;  // frozen parameters are never updated
      auto& s = state_by_group_[g][j];
      auto data = params[j].detach();
      const bool fused = glob.fused_cpu() && detail::fusable(data, s.momentum, s.hess) &&
                         detail::fusable(data, s.grad_sum, s.nxg_sum);
      if (fused) {
        detail::update_fused(data, s.momentum, s.hess, s.grad_sum, s.nxg_sum, c);
      } else {
        m.push_back(data);
        momentum.push_back(s.momentum);
        hess.push_back(s.hess);
        grad_sum.push_back(s.grad_sum);
        nxg_sum.push_back(s.nxg_sum);
      }
    }
    detail::update_foreach(m, momentum, hess, grad_sum, nxg_sum, c);
  }
  samples_ = 0;
}

torch::Tensor IVON::step(LossClosure closure) {
  if (!closure) {
    update();
    return {};
  }
  torch::Tensor total;
  const int64_t k = global().mc_samples();
  for (int64_t s = 0; s < k; ++s) {
    auto guard = sampled_params(true);
    auto loss = closure().detach();
    total = total.defined() ? total + loss : loss;
  }
  update();
  return total / static_cast<double>(k);
}

std::vector<torch::Tensor> IVON::trainable_params() const {
  std::vector<torch::Tensor> out;
  for (const auto& group : param_groups_) {
    for (const auto& p : group.params()) {
      if (p.requires_grad()) out.push_back(p);
    }
  }
  return out;
}

posterior::DiagonalGaussian IVON::posterior() const {
  ensure_state();  // a group added since the last step has its h0 state
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> mean, variance;
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    const auto& o = group_options(g);
    const auto& params = param_groups_[g].params();
    for (size_t j = 0; j < params.size(); ++j) {
      if (!params[j].requires_grad()) continue;
      const auto h = j < state_by_group_[g].size()
                         ? state_by_group_[g][j].hess
                         : torch::full_like(params[j], o.hess_init());
      mean.push_back(params[j].detach().clone());
      // σ² = 1 / (λ (h + δ))  (METHODS.md §1)
      variance.push_back((h + o.weight_decay()).mul(o.ess()).reciprocal());
    }
  }
  return {std::move(mean), std::move(variance), "ivon"};
}

std::vector<torch::Tensor> IVON::hessian() const {
  ensure_state();
  std::vector<torch::Tensor> out;
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    for (size_t j = 0; j < state_by_group_[g].size(); ++j) {
      if (param_groups_[g].params()[j].requires_grad()) out.push_back(state_by_group_[g][j].hess);
    }
  }
  return out;
}

std::vector<torch::Tensor> IVON::momentum() const {
  ensure_state();
  std::vector<torch::Tensor> out;
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    for (size_t j = 0; j < state_by_group_[g].size(); ++j) {
      if (param_groups_[g].params()[j].requires_grad()) {
        out.push_back(state_by_group_[g][j].momentum);
      }
    }
  }
  return out;
}

// ---- serialization ------------------------------------------------------------------------

void IVON::save(torch::serialize::OutputArchive& archive) const {
  ensure_state();
  const auto& glob = global();
  archive.write("ivon/format_version", torch::tensor(kFormatVersion));
  archive.write("ivon/step_count", torch::tensor(step_count_));
  archive.write("ivon/noise_draws", torch::tensor(static_cast<int64_t>(noise_draws_)));
  archive.write("ivon/num_groups", torch::tensor(static_cast<int64_t>(param_groups_.size())));
  archive.write("ivon/global_options",
                torch::tensor({glob.mc_samples(), static_cast<int64_t>(glob.hess_approx()),
                               static_cast<int64_t>(glob.debias()),
                               static_cast<int64_t>(glob.rescale_lr()),
                               static_cast<int64_t>(glob.seed())}));
  if (generator_.has_value()) archive.write("ivon/generator_state", generator_->get_state());
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    const auto& o = group_options(g);
    archive.write("ivon/group" + std::to_string(g) + "/options",
                  torch::tensor({o.lr(), o.ess(), o.hess_init(), o.beta1(), o.beta2(),
                                 o.weight_decay(), o.clip_radius()},
                                torch::kFloat64));
    const auto& params = param_groups_[g].params();
    archive.write("ivon/group" + std::to_string(g) + "/num_params",
                  torch::tensor(static_cast<int64_t>(params.size())));
    for (size_t j = 0; j < params.size(); ++j) {
      // Between steps the parameters hold m; inside a guard they hold a sample.
      const auto& s = state_by_group_[g][j];
      archive.write(key(g, j, "mean"),
                    (sampling_ && s.saved_mean.defined() ? s.saved_mean : params[j]).detach().cpu());
      archive.write(key(g, j, "hess"), s.hess.cpu());
      archive.write(key(g, j, "momentum"), s.momentum.cpu());
    }
  }
}

void IVON::load(torch::serialize::InputArchive& archive) {
  if (sampling_) throw Error("IVON::load: called while a sample is active");
  const auto version = read_tensor(archive, "ivon/format_version").item<int64_t>();
  if (version != kFormatVersion) {
    throw Error("IVON::load: state format version " + std::to_string(version) +
                " is not supported (this build reads version " + std::to_string(kFormatVersion) + ")");
  }
  const auto groups = read_tensor(archive, "ivon/num_groups").item<int64_t>();
  if (groups != static_cast<int64_t>(param_groups_.size())) {
    throw Error("IVON::load: the archive has " + std::to_string(groups) +
                " parameter groups, this optimizer " + std::to_string(param_groups_.size()));
  }
  ensure_state();
  torch::NoGradGuard no_grad;
  // Check every shape before changing anything, so a mismatch leaves the optimizer intact.
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    const auto& params = param_groups_[g].params();
    const auto n = read_tensor(archive, "ivon/group" + std::to_string(g) + "/num_params").item<int64_t>();
    if (n != static_cast<int64_t>(params.size())) {
      throw Error("IVON::load: group " + std::to_string(g) + " has " + std::to_string(n) +
                  " parameters in the archive, " + std::to_string(params.size()) + " here");
    }
    for (size_t j = 0; j < params.size(); ++j) {
      for (const char* what : {"mean", "hess", "momentum"}) {
        if (!read_tensor(archive, key(g, j, what)).sizes().equals(params[j].sizes())) {
          throw Error("IVON::load: shape of " + key(g, j, what) + " differs from the parameter's");
        }
      }
    }
  }
  const auto global_opts = read_tensor(archive, "ivon/global_options");
  auto& glob = static_cast<IVONOptions&>(defaults());
  glob.mc_samples(global_opts[0].item<int64_t>())
      .hess_approx(static_cast<HessApprox>(global_opts[1].item<int64_t>()))
      .debias(global_opts[2].item<int64_t>() != 0)
      .rescale_lr(global_opts[3].item<int64_t>() != 0)
      .seed(static_cast<uint64_t>(global_opts[4].item<int64_t>()));
  step_count_ = read_tensor(archive, "ivon/step_count").item<int64_t>();
  noise_draws_ = static_cast<uint64_t>(read_tensor(archive, "ivon/noise_draws").item<int64_t>());
  samples_ = 0;
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    const auto o = read_tensor(archive, "ivon/group" + std::to_string(g) + "/options");
    auto& opts = static_cast<IVONOptions&>(param_groups_[g].options());
    opts.lr(o[0].item<double>()).ess(o[1].item<double>()).hess_init(o[2].item<double>())
        .beta1(o[3].item<double>()).beta2(o[4].item<double>()).weight_decay(o[5].item<double>())
        .clip_radius(o[6].item<double>());
    auto& params = param_groups_[g].params();
    for (size_t j = 0; j < params.size(); ++j) {
      auto& s = state_by_group_[g][j];
      const auto& p = params[j];
      // State follows the parameter's device, dtype and layout (as in ensure_state), wherever
      // it was saved from.
      params[j].detach().copy_(read_tensor(archive, key(g, j, "mean")));
      s.hess = torch::empty_like(p, torch::MemoryFormat::Preserve)
                   .copy_(read_tensor(archive, key(g, j, "hess")));
      s.momentum = torch::empty_like(p, torch::MemoryFormat::Preserve)
                       .copy_(read_tensor(archive, key(g, j, "momentum")));
      s.grad_sum = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      s.nxg_sum = torch::zeros_like(p, torch::MemoryFormat::Preserve);
    }
  }
  torch::Tensor gen_state;
  if (archive.try_read("ivon/generator_state", gen_state)) {
    ensure_generator(param_groups_.front().params().front().device());
    generator_->set_state(gen_state);
  }
}

}  // namespace kprior::optim
