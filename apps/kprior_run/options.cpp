#include "options.h"

#include <fmt/core.h>
#include <torch/cuda.h>

#include <filesystem>
#include <sstream>

#include "app_main.h"
#include "kprior/core/error.h"
#include "kprior/core/version.h"
#include "kprior/linearize/linearize.h"
#include "kprior/nn/models.h"
#include "kprior/train/published_settings.h"

namespace kprior_run {

using namespace kprior;

void add_options(CLI::App& cli, Options& o) {
  cli.add_option("--tasks", o.tasks,
                 "task sequence: split-mnist (5x2 classes), permuted-mnist (10 permutations),\n"
                 "split-fashion (5x2), split-cifar (CIFAR-10 then 5x10 CIFAR-100 classes),\n"
                 "split-cifar100 (10x10), split-tinyimagenet (10 tasks of C/10 classes),\n"
                 "split-imagenet (10 tasks of C/10 classes in an order shuffled with the fixed\n"
                 "seed 1993; both JPEG trees of C classes, C a multiple of 10 and at least 20,\n"
                 "training streamed from the files), split-h5 (an HDF5 array file as --data-dir,\n"
                 "or a folder holding data.h5: README)")->capture_default_str();
  cli.add_option("--model", o.model,
                 "mlp, lenet5, cifarnet or resnet18 (default: the benchmark's: mlp for the\n"
                 "MNIST family, cifarnet for split-cifar and split-cifar100, resnet18 for\n"
                 "split-tinyimagenet and split-imagenet); resnet18 takes the CIFAR stem (3x3\n"
                 "conv, no max-pooling) for images of at most 64x64, else ImageNet's");
  cli.add_option("--method", o.method,
                 "finetune, ewc (online by default: one Fisher summed over tasks, anchored at\n"
                 "the last weights; --ewc-mode), fromp, replay, kprior, ewc+fr+replay (its\n"
                 "replay memory M2 is a second, random memory of --memory-per-task),\n"
                 "ivon-prior (needs --optimizer ivon), a comma-separated combination (e.g.\n"
                 "ewc,fromp,replay), or joint (all tasks at once: the upper bound; not on the\n"
                 "JPEG trees, whose training images are streamed)")->capture_default_str();
  cli.add_option("--optimizer", o.optimizer, "ivon, adam or sgd")->capture_default_str();
  cli.add_option("--lr", o.lr, "learning rate (default: published Adam rate; ivon 0.1; sgd 0.01)");
  cli.add_option("--lr-schedule", o.lr_schedule,
                 "learning rate within each task: constant, or cosine (decays to 0 over the\n"
                 "task's steps, restarting at every task) (default: cosine with ivon except\n"
                 "on permuted-mnist, else constant as published)");
  cli.add_option("--epochs", o.epochs, "epochs per task (default: published; 10 with ivon and fromp on split-mnist)");
  cli.add_option("--batch-size", o.batch_size, "mini-batch size (default: published; 8 with ivon and fromp on split-mnist)");
  cli.add_option("--hidden", o.hidden, "MLP hidden widths, comma-separated, or none (default: published; 256,256\nwhere the published model is a CNN; --model mlp only)");
  cli.add_option("--memory-per-task", o.memory, "remembered examples per task (default: published; with fromp at most\nwhat its kernels fit in 8 GiB, e.g. 145 for ResNet-18 on TinyImageNet)");
  cli.add_option("--select", o.select,
                 "memory selection: lambda (Tr Λ), mpe, random; auto = random for replay alone\n"
                 "(true labels of the most ambiguous examples warp the boundary), else lambda")->capture_default_str();
  cli.add_option("--tau", o.tau, "FROMP τ, the function term's weight against the mean loss\n(default: published; with ivon published × 2e-4)");
  cli.add_option("--prior-precision", o.prior_precision,
                 "δ of the Laplace posterior used for FROMP's kernels with adam/sgd\n(default: published)");
  cli.add_option("--boundary-sample", o.boundary_sample,
                 "JPEG trees (split-tinyimagenet, split-imagenet): training images per class decoded\n"
                 "into memory for each task boundary (memory selection, Fisher, soft targets), a\n"
                 "fixed random draw; the memory per task is chosen from them (0 = all)")
      ->check(kprior::app::integer_in(0, 1000000))
      ->capture_default_str();
  cli.add_option("--jitter", o.jitter, "FROMP kernel jitter ε (default: published for adam, 1e-2 for ivon)");
  cli.add_option("--clip", o.clip,
                 "global gradient-norm clip, 0 = none (default: FROMP's published clip with\n"
                 "adam and fromp, scaled with --tau; none otherwise)");
  // IVON's defaults are train::ivon_settings (measured; documented there).
  cli.add_option("--hess-init", o.hess_init,
                 "IVON's initial Hessian h0 (sets the first posterior's spread,\n"
                 "σ² = 1/(N (h0 + δ)); default 100 with fromp, else 1)");
  cli.add_option("--ivon-beta2", o.ivon_beta2, "IVON's β2 (momentum of its Hessian estimate)")->capture_default_str();
  cli.add_option("--ivon-wd", o.ivon_wd, "IVON's weight decay δ (prior precision per example)")->capture_default_str();
  cli.add_option("--fisher", o.fisher, "EWC Fisher: ggn, empirical, true")->capture_default_str();
  cli.add_option("--ewc-lambda", o.ewc_lambda, "EWC λ (1 = Laplace weighting)")->capture_default_str();
  cli.add_option("--ewc-mode", o.ewc_mode,
                 "online (one Fisher summed over the tasks, anchored at the latest weights;\n"
                 "Schwarz et al. 2018) or offline (one Fisher and anchor per past task, the\n"
                 "original EWC of Kirkpatrick et al. 2017)")
      ->check(CLI::IsMember({"online", "offline"}))
      ->capture_default_str();
  cli.add_option("--kprior-delta", o.kprior_delta, "δ of the weight term of K-prior and of ewc+fr+replay")->capture_default_str();
  cli.add_option("--replay-weight", o.replay_weight, "weight of the replay loss")->capture_default_str();
  cli.add_option("--seed", o.seed, "first seed (initialisation, shuffling, noise)")
      ->check(kprior::app::not_negative())
      ->capture_default_str();
  cli.add_option("--seeds", o.seeds, "number of seeds to run (seed, seed+1, ...); mean ± std reported")->capture_default_str();
  cli.add_option("--data-dir", o.data_dir, "folder with the bundled data (mnist10k/, fashion-mnist/) or with IDX files;\n"
                 "for CIFAR the folder holding cifar-10-batches-bin/ and cifar-100-binary/, for\n"
                 "the JPEG trees the one holding tiny-imagenet-200/ or imagenet/ (README)")->capture_default_str();
  cli.add_option("--out", o.out_dir, "output folder")->capture_default_str();
  cli.add_flag("--plot", o.plot,
               "also draw accuracy.png (accuracy matrix and average accuracy after each task)\n"
               "with notebooks/kprior_plot.py; needs Python 3 with matplotlib");
  cli.add_flag("--example-scores", o.example_scores,
               "at each task boundary, score every training example of the task held in memory\n"
               "(all of it, or the boundary sample of a streamed JPEG task) (Tr Λ, logit\n"
               "variance and MPE score when there is a posterior) and mark the remembered ones:\n"
               "example_scores.h5 (example_scores-seed<S>.h5 with --seeds > 1)");
  cli.add_option("--device", o.device, "cpu or cuda")->capture_default_str();
  cli.add_option("--threads", o.threads, "LibTorch threads, and the JPEG trees' decoding threads (0 = all cores;\n"
                 "at most the cores)")
      ->check(kprior::app::integer_in(0, 4096))
      ->capture_default_str();
  cli.add_option("--precision", o.precision,
                 "fp32, or bf16: each training step's forward passes (batch and memory) under\n"
                 "bf16 autocast; parameters, gradients and the optimizer's state stay fp32, and\n"
                 "evaluation and the task-boundary work (memory, posterior, kernels) run in fp32")
      ->capture_default_str();
  cli.add_option("--memory-format", o.memory_format,
                 "layout of the convolution weights and activations: auto (channels-last for\n"
                 "a CNN on cuda, where it is faster), contiguous or channels-last")->capture_default_str();
  cli.add_option("--resume", o.resume_dir,
                 "continue the run whose checkpoint is in this folder after its last complete\n"
                 "task, with its saved options (only --threads, --data-dir, --stop-after-task\n"
                 "and --jitter may be given too)");
  cli.add_option("--stop-after-task", o.stop_after,
                 "stop once this many tasks are learned (checkpoint kept; continue with\n"
                 "--resume); 0 = run to the end")->capture_default_str();
  cli.set_config("--config", "", "read options from a TOML/INI file (CLI11 format)");
  cli.allow_config_extras(false);  // a misspelt option in a config file is an error, not ignored
  cli.set_version_flag("--version", kprior::version());
}

bool given(const CLI::App& cli, const std::string& name) { return cli.get_option(name)->count() > 0; }

void check_options(const CLI::App& cli, const Options& o, bool resume_given) {
  train::published_settings(o.tasks);  // a benchmark it knows
  if (o.seeds < 1) throw UsageError("--seeds must be >= 1");
  if (o.stop_after < 0) throw UsageError("--stop-after-task must be >= 0");
  if (!o.resume_dir.empty() && !resume_given) {
    // Its saved options replace the given ones before parsing, which a config file comes too late for.
    throw UsageError("--resume must be given on the command line, not in a --config file");
  }
  const auto& out_dir = o.resume_dir.empty() ? o.out_dir : o.resume_dir;
  if (std::filesystem::exists(out_dir) && !std::filesystem::is_directory(out_dir)) {
    throw FileError(out_dir, "is a file, not an output folder");  // before any data is read
  }
  // Flag names in the messages; the library checks the same ranges in its own terms.
  if (given(cli, "--lr")) require_positive("--lr", o.lr);
  if (given(cli, "--tau")) require_positive("--tau", o.tau);
  if (given(cli, "--jitter")) require_positive("--jitter", o.jitter);
  if (given(cli, "--clip")) require_non_negative("--clip", o.clip);
  if (given(cli, "--prior-precision")) require_positive("--prior-precision", o.prior_precision);
  if (given(cli, "--hess-init")) require_positive("--hess-init", o.hess_init);
  require_non_negative("--ewc-lambda", o.ewc_lambda);
  require_non_negative("--kprior-delta", o.kprior_delta);
  require_non_negative("--replay-weight", o.replay_weight);
  require_non_negative("--ivon-wd", o.ivon_wd);
  if (!(o.ivon_beta2 >= 0 && o.ivon_beta2 <= 1)) {
    throw UsageError(fmt::format("--ivon-beta2 must be in [0, 1], got {}", o.ivon_beta2));
  }
  if (o.device != "cpu" && o.device != "cuda") throw UsageError("--device must be cpu or cuda");
  if (o.device == "cuda" && !torch::cuda::is_available()) {
    throw UsageError("--device cuda: no CUDA device available in this build");
  }
  nn::parse_precision(o.precision);
  nn::parse_memory_format(o.memory_format);
  if (!o.hidden.empty()) parse_widths(o.hidden);
  const auto model = nn::parse_model(o.model.empty() ? train::published_settings(o.tasks).model : o.model);
  if (!o.hidden.empty() && model != nn::ModelKind::MLP) throw UsageError("--hidden applies to --model mlp only");
}

regularize::MethodSettings method_settings(const CLI::App& cli, const Options& o) {
  const auto pub = train::published_settings(o.tasks);
  const bool ivon = train::parse_optimizer(o.optimizer) == train::OptimizerKind::IVON;
  const auto iv = train::ivon_settings(o.tasks, o.method.find("fromp") != std::string::npos);
  regularize::MethodSettings ms;
  ms.fromp.tau(given(cli, "--tau") ? o.tau : (ivon ? pub.tau * iv.tau_scale : pub.tau))
      .jitter(given(cli, "--jitter") ? o.jitter : (ivon ? iv.jitter : pub.jitter));
  const auto curvature = o.fisher == "ggn"         ? linearize::Curvature::GGN
                         : o.fisher == "empirical" ? linearize::Curvature::EmpiricalFisher
                         : o.fisher == "true"      ? linearize::Curvature::TrueFisher
                                                   : throw UsageError("--fisher must be ggn, empirical or true");
  ms.ewc.lambda(o.ewc_lambda).fisher(curvature).online(o.ewc_mode == "online");
  ms.kprior.delta(o.kprior_delta);
  ms.combined.delta(o.kprior_delta).fisher(curvature).weight_lambda(o.ewc_lambda);  // its weight term is EWC's
  ms.replay.weight(o.replay_weight);
  return ms;
}

train::LearnerOptions learner_options(const CLI::App& cli, const Options& o, const regularize::MethodSettings& ms) {
  const auto pub = train::published_settings(o.tasks);
  const auto kind = train::parse_optimizer(o.optimizer);
  const bool ivon = kind == train::OptimizerKind::IVON;
  const bool with_fromp = o.method.find("fromp") != std::string::npos;
  const auto iv = train::ivon_settings(o.tasks, with_fromp);
  // FROMP's published clip (METHODS.md §4) belongs to FROMP's Adam runs: the other methods'
  // papers clip nothing. It is c·τ on our ∇(ℓ + τ·penalty) (c on the published ∇ℓ/τ +
  // ∇penalty), so it follows --tau. Clipping IVON's gradients would also shrink its Hessian
  // estimate (ĥ uses ĝ), so IVON runs unclipped.
  const double default_clip = kind == train::OptimizerKind::Adam && with_fromp && pub.tau > 0
                                  ? pub.grad_clip / pub.tau * ms.fromp.tau() : 0.0;
  if (o.method.find("ivon-prior") != std::string::npos && !ivon) {
    throw UsageError("ivon-prior regularizes with IVON's posterior: it needs --optimizer ivon");
  }
  const auto given_or = [&](const char* name, auto value, auto fallback) {
    return given(cli, name) ? value : fallback;
  };
  auto options = train::LearnerOptions()
                     .optimizer(kind)
                     .lr(given_or("--lr", o.lr, kind == train::OptimizerKind::Adam ? pub.adam_lr : 0.0))
                     .lr_schedule(given(cli, "--lr-schedule") ? train::parse_lr_schedule(o.lr_schedule)
                                                              : (ivon ? iv.lr_schedule : train::LrSchedule::Constant))
                     .epochs(given_or("--epochs", o.epochs, ivon ? iv.epochs : pub.epochs))
                     .batch_size(given_or("--batch-size", o.batch_size, ivon ? iv.batch_size : pub.batch_size))
                     .grad_clip(given_or("--clip", o.clip, default_clip))
                     .memory_per_task(given_or("--memory-per-task", o.memory, pub.memory_per_task))
                     .selection(memory::parse_selection(memory_selection(o)))
                     .laplace_prior(given_or("--prior-precision", o.prior_precision, pub.prior_precision))
                     .hess_init(given_or("--hess-init", o.hess_init, iv.hess_init))
                     .weight_decay(o.ivon_wd)
                     .hess_beta(o.ivon_beta2)
                     .precision(nn::parse_precision(o.precision));
  options.validate();
  return options;
}

void check_method(const Options& o) {
  const auto& method = o.method;
  if (method != "joint" && (method.rfind("joint,", 0) == 0 || method.find(",joint") != std::string::npos)) {
    throw UsageError("joint (training on all tasks at once) cannot be combined with other methods");
  }
  if (method != "joint") return;
  if (o.example_scores) throw UsageError("--example-scores scores each task at its boundary; joint training has none");
  if (o.stop_after > 0 || !o.resume_dir.empty()) {
    throw UsageError("joint training learns all tasks in one go: --stop-after-task and --resume do not apply");
  }
  if (is_jpeg_tree(o.tasks)) {
    throw UsageError("joint training needs every task's data in memory; " + o.tasks + " streams its training "
                     "images from the files");
  }
}

// Measured on split-Fashion (seed 0): replay 87.1% with Tr Λ memory, 97.9% random.
std::string memory_selection(const Options& o) {
  if (o.select != "auto") return o.select;
  return o.method == "replay" ? "random" : "lambda";
}

bool is_jpeg_tree(const std::string& tasks) { return tasks == "split-tinyimagenet" || tasks == "split-imagenet"; }

std::vector<int64_t> parse_widths(const std::string& text) {
  std::vector<int64_t> widths;
  if (text == "none") return widths;  // no hidden layer: a linear model
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      widths.push_back(std::stoll(item));
    } catch (const std::exception&) {
      throw UsageError("--hidden: '" + item + "' is not an integer");
    }
  }
  return widths;
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (auto x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

}  // namespace kprior_run
