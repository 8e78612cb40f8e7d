// kprior-run: a continual-learning experiment on a task sequence — train each task in turn
// with the chosen method(s), evaluate every task seen so far, write results other tools read.
// The stages of a run are below; options, progress lines, outputs and --resume have their own
// files here, and the learning itself is libkprior's.
#include <fmt/core.h>
#include <torch/torch.h>
#include <torch/version.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "app_main.h"
#include "options.h"
#include "outputs.h"
#include "plot.h"
#include "progress.h"
#include "resume.h"
#include "kprior/checkpoint/file.h"
#include "kprior/core/allocator.h"
#include "kprior/core/threads.h"
#include "kprior/core/version.h"
#include "kprior/data/benchmarks.h"
#include "kprior/linearize/linearize.h"
#include "kprior/nn/models.h"
#include "kprior/regularize/factory.h"
#include "kprior/train/continual_learner.h"
#include "kprior/train/published_settings.h"
#include "kprior/train/run_checkpoint.h"

namespace kprior_run {
namespace {

using nlohmann::json;
using namespace kprior;

// What every seed of a run shares once the options are resolved and the data is read.
struct Experiment {
  Options o;
  std::string arguments;  // the given options, as the checkpoints record them
  regularize::MethodSettings ms;
  train::LearnerOptions options;
  bool needs_memory = false;
  torch::Device device{torch::kCPU};
  data::TaskSequence seq;
  nn::ModelKind model_kind = nn::ModelKind::MLP;
  std::vector<int64_t> input_shape, widths_hidden;
  json config;
  bool tty = false;
};

// The benchmark's tasks, on the device where they fit (a streamed task's test set stays in
// host memory: evaluation moves it chunk by chunk).
data::TaskSequence load_sequence(const CLI::App& cli, const Options& o, int threads, const torch::Device& device) {
  data::BenchmarkOptions data_options;
  data_options.seed = o.seed;
  data_options.threads = threads;
  if (given(cli, "--boundary-sample")) data_options.boundary_sample_per_class = o.boundary_sample;
  const bool jpeg_tree = is_jpeg_tree(o.tasks);
  const auto load_start = std::chrono::steady_clock::now();
  if (jpeg_tree) {  // minutes for ImageNet, before anything else is printed
    fmt::print("reading {} from {}: decoding the val set and the boundary sample ...\n", o.tasks, o.data_dir);
    std::fflush(stdout);
  }
  auto seq = data::make_benchmark(o.tasks, o.data_dir, data_options);
  if (jpeg_tree) {
    int64_t val = 0, sample = 0;
    for (const auto& t : seq.tasks) {
      val += t.test.size();
      sample += t.train.size();
    }
    fmt::print("read {} val and {} boundary images in {:.1f} s\n", val, sample,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count());
  }
  if (given(cli, "--boundary-sample") && !seq.tasks.front().train_stream) {
    fmt::print("note: --boundary-sample has no effect: {} holds its whole training set in memory\n", o.tasks);
  }
  for (auto& t : seq.tasks) {
    t.train = t.train.to(device);
    // A streamed task's test set can be large (ImageNet's val: ~30 GB as floats).
    if (!t.train_stream) t.test = t.test.to(device);
  }
  return seq;
}

// The model's shapes and layout, the memory it can hold, and notes on options that cannot act.
void fit_model_to_data(const CLI::App& cli, Experiment& ex) {
  const auto& o = ex.o;
  const auto example = ex.seq.tasks[0].train.inputs.sizes().slice(1);
  ex.input_shape.assign(example.begin(), example.end());
  auto probe = nn::make_model(ex.model_kind, ex.input_shape, ex.seq.num_outputs, ex.widths_hidden);
  // Auto resolved once here, so the printed and saved configuration name the layout used.
  const auto format_choice = nn::parse_memory_format(o.memory_format);
  ex.options.memory_format(nn::resolve_memory_format(format_choice, *probe, ex.device.is_cuda()));
  if (o.method.find("fromp") != std::string::npos) {
    // FROMP holds a task's whole memory in its kernels, one class row at a time at the least.
    // A default memory that cannot fit (ResNet-18 on large images) becomes the most that
    // fits; a given one that cannot fit is refused, before hours of training.
    const auto x1 = ex.seq.tasks[0].train.inputs.slice(0, 0, 1).cpu();
    const int64_t fit = linearize::max_kernel_inputs(*probe, x1, 1);
    if (!given(cli, "--memory-per-task") && ex.options.memory_per_task() > fit && fit > 0) {
      fmt::print("note: FROMP's kernels over {} points per task would exceed their {} GiB limit with {} on these "
                 "inputs; using {} points per task, the most that fit (--memory-per-task to choose)\n",
                 ex.options.memory_per_task(), linearize::kKernelFloats * x1.element_size() >> 30,
                 nn::to_string(ex.model_kind), fit);
      ex.options.memory_per_task(fit);
    }
    linearize::check_kernel_memory(*probe, x1, ex.options.memory_per_task(), 1);
  }
  if (ex.needs_memory) {
    for (const auto& t : ex.seq.tasks) train::check_memory_fits(ex.options.memory_per_task(), t);
  } else if (given(cli, "--memory-per-task")) {
    fmt::print("note: --memory-per-task has no effect: method {} keeps no memory\n", o.method);
  }
  if (given(cli, "--ewc-mode") && ("," + o.method + ",").find(",ewc,") == std::string::npos) {
    fmt::print("note: --ewc-mode has no effect: it applies to the ewc method only (method {})\n", o.method);
  }
  if (given(cli, "--jitter") && o.method.find("fromp") == std::string::npos) {
    fmt::print("note: --jitter has no effect: it is FROMP's kernel jitter (method {})\n", o.method);
  }
  if (format_choice == nn::MemoryFormat::ChannelsLast && !nn::has_conv_weights(*probe)) {
    fmt::print("note: --memory-format channels-last has no effect on a model without convolutions\n");
  }
}

// The MLP's widths, input to output.
std::vector<int64_t> mlp_widths(const Experiment& ex) {
  std::vector<int64_t> widths{ex.seq.tasks[0].train.inputs[0].numel()};
  widths.insert(widths.end(), ex.widths_hidden.begin(), ex.widths_hidden.end());
  widths.push_back(ex.seq.num_outputs);
  return widths;
}

void print_header(const Experiment& ex, int threads) {
  const auto& o = ex.o;
  const auto& options = ex.options;
  const std::string model_text = ex.model_kind == nn::ModelKind::MLP
                                     ? "MLP " + join(mlp_widths(ex))
                                     : fmt::format("{} ({} outputs)", nn::to_string(ex.model_kind), ex.seq.num_outputs);
  fmt::print("kprior-run {}: {} ({} tasks), method {}, optimizer {} (lr {}, {}), {}, {} epochs of batch {}, "
             "memory {}, {} seed(s), {} threads, {} ({}, {})\n",
             version(), o.tasks, ex.seq.size(), o.method, o.optimizer, options.effective_lr(),
             train::to_string(options.lr_schedule()), model_text, options.epochs(), options.batch_size(),
             !ex.needs_memory ? std::string("none")
             : o.method.find("ewc+fr+replay") != std::string::npos
                 ? fmt::format("{0}/task ({1}) + {0}/task (random, ewc+fr+replay's M2)", options.memory_per_task(), o.select)
                 : fmt::format("{}/task ({})", options.memory_per_task(), o.select),
             o.seeds, threads, o.device, nn::to_string(options.precision()), nn::to_string(options.memory_format()));
}

// The configuration results.json and the checkpoints record.
json run_config(const Experiment& ex, int threads) {
  const auto& o = ex.o;
  const auto& options = ex.options;
  const auto& ms = ex.ms;
  return {{"tasks", o.tasks}, {"method", o.method}, {"optimizer", o.optimizer},
          {"lr", options.effective_lr()}, {"lr_schedule", train::to_string(options.lr_schedule())},
          {"epochs", options.epochs()},
          {"batch_size", options.batch_size()}, {"model", nn::to_string(ex.model_kind)},
          {"mlp", ex.model_kind == nn::ModelKind::MLP ? json(mlp_widths(ex)) : json()},
          {"memory_per_task", options.memory_per_task()}, {"select", o.select},
          {"tau", ms.fromp.tau()}, {"jitter", ms.fromp.jitter()},
          {"grad_clip", options.grad_clip()}, {"prior_precision", options.laplace_prior()},
          {"fisher", o.fisher}, {"ewc_lambda", o.ewc_lambda}, {"ewc_mode", o.ewc_mode}, {"kprior_delta", o.kprior_delta},
          {"replay_weight", o.replay_weight}, {"hess_init", options.hess_init()}, {"ivon_weight_decay", o.ivon_wd},
          {"ivon_beta2", o.ivon_beta2}, {"seed", o.seed}, {"seeds", o.seeds},
          {"device", o.device}, {"precision", nn::to_string(options.precision())},
          {"memory_format", nn::to_string(options.memory_format())},
          {"threads", threads}, {"data_dir", absolute_path(o.data_dir)},
          {"boundary_sample", is_jpeg_tree(o.tasks) ? json(o.boundary_sample) : json()},
          {"data_fingerprint", fmt::format("{:016x}", data::sequence_fingerprint(ex.seq))}};
}

// "after task t: accuracy (%) ... | average ...".
void print_row(int64_t t, const std::vector<double>& accs, bool tty) {
  double mean = 0;
  std::string row;
  for (double a : accs) {
    mean += a;
    row += fmt::format(" {:.1f}", 100 * a);
  }
  fmt::print("{}after task {}: accuracy (%){}  | average {:.2f}\n", tty ? app::kClearLine : "", t + 1, row,
             100 * mean / static_cast<double>(accs.size()));
}

// One seed's run, from its checkpoint where resuming: its results.json entry, or nothing
// when it stopped (--stop-after-task) before the last task.
std::optional<json> run_seed(const Experiment& ex, int64_t s) {
  const auto& o = ex.o;
  const auto& seq = ex.seq;
  const uint64_t run_seed = o.seed + static_cast<uint64_t>(s);
  torch::manual_seed(run_seed);
  auto model = nn::make_model(ex.model_kind, ex.input_shape, seq.num_outputs, ex.widths_hidden);
  model->to(ex.device);
  train::Callbacks cb;
  cb.on_epoch_end = [&](const train::Progress& p) { print_progress(p, seq.size(), ex.tty); };
  StepProgress steps(seq.size(), ex.tty);
  cb.on_batch_end = [&](const train::BatchProgress& p) { steps.batch(p); };
  cb.on_boundary_start = [&](int64_t t) { steps.boundary(t); };
  train::ContinualLearner* learner_ptr = nullptr;  // the callback runs inside the learner below
  const std::string scores_path = o.out_dir + (o.seeds > 1 ? fmt::format("/example_scores-seed{}.h5", run_seed)
                                                           : std::string("/example_scores.h5"));
  // A resumed run adds its tasks to the scores written before the interruption.
  checkpoint::Tree scores_tree = !o.resume_dir.empty() && std::filesystem::exists(scores_path)
                                     ? checkpoint::read(scores_path) : checkpoint::Tree();
  if (o.example_scores) {
    cb.on_task_end = [&](int64_t t) {
      write_example_scores(*learner_ptr, seq.tasks[static_cast<size_t>(t)], scores_tree, scores_path);
    };
  }
  const bool joint = o.method == "joint";
  auto seed_ms = ex.ms;
  seed_ms.combined.seed(run_seed);
  train::ContinualLearner learner(model, regularize::make_regularizers(joint ? "finetune" : o.method, seed_ms),
                                  train::LearnerOptions(ex.options).seed(run_seed), cb);
  learner_ptr = &learner;
  app::create_output_dir(o.out_dir);
  const auto ckpt = checkpoint_path(o.out_dir, o.seeds, run_seed);
  std::optional<train::SequenceResult> resumed;
  if (!o.resume_dir.empty() && !joint && std::filesystem::exists(ckpt)) {
    const auto tree = checkpoint::read(ckpt);
    const auto info = train::read_run_info(tree);
    if (info.seed != run_seed) throw FileError(ckpt, "is the checkpoint of another seed");
    require_same_data(ckpt, info.config_json, ex.config);
    resumed = train::load_run_checkpoint(tree, learner);
    if (o.stop_after > 0 && o.stop_after <= learner.tasks_observed() && learner.tasks_observed() < seq.size()) {
      // Nothing to learn before the stop (the run would otherwise train one more task).
      print_already_stopped(run_seed, learner.tasks_observed(), seq.size(), o.stop_after);
      return std::nullopt;
    }
    fmt::print("seed {}: resuming after task {} of {} from {}\n", run_seed, learner.tasks_observed(), seq.size(), ckpt);
  }
  train::SequenceHooks hooks;
  hooks.on_row = [tty = ex.tty](int64_t t, const std::vector<double>& accs) { print_row(t, accs, tty); };
  const auto csv_path = o.out_dir + (o.seeds > 1 ? fmt::format("/accuracy_matrix-seed{}.csv", run_seed)
                                                 : std::string("/accuracy_matrix.csv"));
  hooks.after_task = [&](int64_t, const train::SequenceResult& partial) {
    train::save_run_checkpoint(ckpt, learner, partial, {ex.config.dump(), ex.arguments, o.tasks, seq.size(), run_seed});
    write_csv(csv_path, partial.task_incremental);  // the rows so far, for a stopped or running run
  };
  hooks.stop = [&](int64_t t) { return o.stop_after > 0 && t + 1 >= o.stop_after; };
  const auto result = joint ? train::run_joint(learner, seq)
                            : train::run_sequence(learner, seq, hooks, resumed ? &*resumed : nullptr);
  if (!joint && o.stop_after > 0 && learner.tasks_observed() < seq.size()) {
    fmt::print("{}stopped after task {} of {}\n", o.seeds > 1 ? fmt::format("seed {}: ", run_seed) : "",
               learner.tasks_observed(), seq.size());
    return std::nullopt;
  }
  const int64_t last = seq.size() - 1;
  auto r = result_json(result);
  r["seed"] = run_seed;
  if (!joint) write_csv(csv_path, result.task_incremental);
  fmt::print("seed {}: average accuracy {:.2f}% (task-incremental), {:.2f}% (class-incremental), "
             "BWT {}, NLL {:.4f}, ECE {:.4f}\n",
             run_seed, 100 * result.task_incremental.average(last), 100 * result.class_incremental.average(last),
             joint ? std::string("n/a") : fmt::format("{:+.2f}", 100 * result.task_incremental.backward_transfer(last)),
             result.nll, result.ece);
  return r;
}

// results.json: the configuration, each task's classes, every seed's results and their
// mean and standard deviation. Returns the mean and standard deviation of the average accuracy.
std::pair<double, double> write_results(const Experiment& ex, const json& runs) {
  std::vector<double> averages;
  for (const auto& r : runs) averages.push_back(r["task_incremental"]["average_accuracy"].get<double>());
  const auto [acc_mean, acc_std] = mean_std(averages);
  // Which classes each task holds (split-imagenet's are shuffled), by name where the data
  // names them, so that other tools need not redo the shuffle.
  json task_list = json::array();
  for (const auto& t : ex.seq.tasks) {
    json entry = {{"task", t.id + 1}, {"classes", t.classes}};
    if (!ex.seq.class_names.empty()) {
      json names = json::array();
      for (int64_t c : t.classes) names.push_back(ex.seq.class_names[static_cast<size_t>(c)]);
      entry["class_names"] = names;
    }
    task_list.push_back(entry);
  }
  json results = {
      {"kprior_version", version()},
      {"torch_version", TORCH_VERSION},
      {"config", ex.config},
      {"task_classes", task_list},
      {"average_accuracy_mean", acc_mean},
      {"average_accuracy_std", acc_std},
      {"nll_mean", across_seeds(runs, "/nll")["mean"]},
      {"ece_mean", across_seeds(runs, "/ece")["mean"]},
      {"across_seeds",
       {{"task_incremental_average_accuracy", across_seeds(runs, "/task_incremental/average_accuracy")},
        {"class_incremental_average_accuracy", across_seeds(runs, "/class_incremental/average_accuracy")},
        {"backward_transfer", across_seeds(runs, "/task_incremental/backward_transfer")},
        {"forgetting", across_seeds(runs, "/task_incremental/forgetting")},
        {"nll", across_seeds(runs, "/nll")},
        {"ece", across_seeds(runs, "/ece")},
        {"brier", across_seeds(runs, "/brier")}}},
      {"runs", runs}};
  std::ofstream(ex.o.out_dir + "/results.json") << results.dump(2) << "\n";
  return {acc_mean, acc_std};
}

int run(const CLI::App& cli, const Options& options_given, bool resume_given) {
  Experiment ex;
  ex.o = options_given;  // a copy: the stages resolve defaults in it
  auto& o = ex.o;
  check_options(cli, o, resume_given);
  if (!o.resume_dir.empty()) o.out_dir = o.resume_dir;
  ex.arguments = given_options(cli, o.data_dir);
  ex.device = torch::Device(o.device == "cuda" ? torch::kCUDA : torch::kCPU);
  const auto pub = train::published_settings(o.tasks);
  ex.widths_hidden = o.hidden.empty() ? pub.hidden : parse_widths(o.hidden);
  ex.model_kind = nn::parse_model(o.model.empty() ? pub.model : o.model);
  ex.ms = method_settings(cli, o);
  ex.options = learner_options(cli, o, ex.ms);
  o.select = memory_selection(o);
  check_method(o);
  ex.needs_memory = o.method != "joint" &&
                    regularize::needs_memory(regularize::make_regularizers(o.method, ex.ms), ex.options.memory_per_task());
  if (!o.resume_dir.empty() && already_stopped(o.out_dir, o.seeds, o.seed, o.stop_after)) return 0;  // before reading data
  std::optional<app::Plotter> plotter;
  if (o.plot) plotter = app::find_plotter();  // before the long work: a missing matplotlib is a usage error
  reuse_large_allocations();  // large per-batch tensors: no page-fault churn
  const int threads = set_threads(o.threads);
  ex.seq = load_sequence(cli, o, threads, ex.device);
  fit_model_to_data(cli, ex);
  ex.tty = isatty(fileno(stdout)) != 0;
  print_header(ex, threads);
  ex.config = run_config(ex, threads);
  if (o.resume_dir.empty()) remove_earlier_run(o.out_dir);
  json runs = json::array();
  bool stopped = false;  // --stop-after-task applies to every seed: each trains up to it
  for (int64_t s = 0; s < o.seeds; ++s) {
    if (auto r = run_seed(ex, s)) {
      runs.push_back(*r);
    } else {
      stopped = true;
    }
  }
  if (stopped) {  // results.json summarises whole runs only
    if (plotter) fmt::print("note: --plot draws the finished run: it is drawn when the resumed run ends\n");
    fmt::print("continue with: kprior-run --resume {}\n", o.out_dir);
    return 0;
  }
  const auto [acc_mean, acc_std] = write_results(ex, runs);
  if (plotter) app::draw(*plotter, "run", o.out_dir, o.out_dir + "/accuracy.png");
  fmt::print("average accuracy {:.2f} ± {:.2f}% over {} seed(s); results in {}\n", 100 * acc_mean, 100 * acc_std,
             o.seeds, o.out_dir);
  return 0;
}

}  // namespace
}  // namespace kprior_run

int main(int argc, char** argv) {
  CLI::App cli{"Run a continual-learning experiment: train on each task of a sequence in turn\n"
               "with the chosen method(s), evaluate all tasks seen so far after each, and\n"
               "write results.json and accuracy_matrix.csv to --out, with a checkpoint\n"
               "(checkpoint.h5) after every task that --resume continues from. Defaults are\n"
               "the published settings of the benchmark (FROMP, NeurIPS 2020).",
               "kprior-run"};
  kprior_run::Options o;
  kprior_run::add_options(cli, o);
  std::vector<std::string> args(argv, argv + argc);
  bool resume_given = false;  // on the command line, where its saved options are read
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] != "--resume" && args[i].rfind("--resume=", 0) != 0) continue;
    if (args[i] == "--resume" && i + 1 == args.size()) break;  // CLI11 reports the missing value
    const auto dir = args[i] == "--resume" ? args[i + 1] : args[i].substr(9);
    // The saved options must be known before parsing; errors map to exit codes as in the run.
    const int rc = kprior::app::guarded("kprior-run", [&] {
      if (dir.empty()) throw kprior::UsageError("--resume needs the output folder of the run to continue");
      args = kprior_run::resumed_arguments(args, dir);
      return 0;
    });
    if (rc != 0) return rc;
    resume_given = true;
    break;
  }
  std::vector<char*> arg_ptrs;
  for (auto& a : args) arg_ptrs.push_back(a.data());
  return kprior::app::run_guarded(cli, static_cast<int>(arg_ptrs.size()), arg_ptrs.data(),
                                  [&] { return kprior_run::run(cli, o, resume_given); });
}
