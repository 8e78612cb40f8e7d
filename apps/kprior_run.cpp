// kprior-run: a continual-learning experiment on a task sequence — train each task in turn
// with the chosen method(s), evaluate every task seen so far, write results other tools read.
#include <fmt/core.h>
#include <torch/torch.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app_main.h"
#include "plot.h"
#include "kprior/checkpoint/file.h"
#include "kprior/checkpoint/objects.h"
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

namespace {

using nlohmann::json;

std::vector<int64_t> parse_widths(const std::string& text) {
  std::vector<int64_t> widths;
  if (text == "none") return widths;  // no hidden layer: a linear model
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      widths.push_back(std::stoll(item));
    } catch (const std::exception&) {
      throw kprior::UsageError("--hidden: '" + item + "' is not an integer");
    }
  }
  return widths;
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (auto x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

// "[#####...............]" for a fraction done in [0, 1].
std::string bar(double done) {
  const int width = 20;
  const int filled = std::clamp(static_cast<int>(width * done), 0, width);
  return "[" + std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(width - filled), '.') + "]";
}

// Progress on one line per task on a terminal, one line per epoch otherwise.
void print_progress(const kprior::train::Progress& p, int64_t num_tasks, bool tty) {
  if (tty) {
    fmt::print("\r  task {}/{} {} epoch {}/{}  loss {:.4f}\x1b[K", p.task + 1, num_tasks,
               bar(static_cast<double>(p.epoch + 1) / static_cast<double>(p.epochs)), p.epoch + 1, p.epochs,
               p.mean_loss);
    if (p.epoch + 1 == p.epochs) fmt::print("\n");
  } else {
    fmt::print("  task {}/{} epoch {}/{}  loss {:.4f}\n", p.task + 1, num_tasks, p.epoch + 1,
               p.epochs, p.mean_loss);
  }
  std::fflush(stdout);
}

// Progress within an epoch and during the boundary work, for runs where either takes long
// (ImageNet: ~500 steps per epoch, minutes of kernels per boundary). On a terminal the task's
// progress line is redrawn at most 4 times a second; in a log, a line at most once a minute.
class StepProgress {
 public:
  StepProgress(int64_t num_tasks, bool tty) : num_tasks_(num_tasks), tty_(tty) {}

  void batch(const kprior::train::BatchProgress& p) {
    if (p.batch + 1 == p.batches) return;  // the epoch's own line follows
    if (!due(tty_ ? 0.25 : 60.0)) return;
    if (tty_) {
      const double done = (static_cast<double>(p.epoch) + static_cast<double>(p.batch + 1) / static_cast<double>(p.batches)) /
                          static_cast<double>(p.epochs);
      fmt::print("\r  task {}/{} {} epoch {}/{} batch {}/{}\x1b[K", p.task + 1, num_tasks_, bar(done), p.epoch + 1,
                 p.epochs, p.batch + 1, p.batches);
    } else {
      fmt::print("  task {}/{} epoch {}/{} batch {}/{}\n", p.task + 1, num_tasks_, p.epoch + 1, p.epochs, p.batch + 1,
                 p.batches);
    }
    std::fflush(stdout);
  }
  void boundary(int64_t task) {
    if (!tty_) return;  // a log has the boundary's seconds in the costs
    fmt::print("  task {}/{}: task boundary (memory selection, curvature, kernels) ...\x1b[K\r", task + 1, num_tasks_);
    std::fflush(stdout);
  }

 private:
  bool due(double seconds) {
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - last_).count() < seconds) return false;
    last_ = now;
    return true;
  }
  int64_t num_tasks_;
  bool tty_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

json result_json(const kprior::train::SequenceResult& r) {
  const int64_t last = r.task_incremental.num_tasks() - 1;
  json costs = json::array();
  for (const auto& c : r.costs) {
    costs.push_back({{"train_seconds", c.train_seconds}, {"boundary_seconds", c.boundary_seconds},
                     {"peak_mib", c.peak_mib}});
  }
  json task = {{"accuracy_matrix", r.task_incremental.rows()},
               {"average_accuracy", r.task_incremental.average(last)}};
  if (r.task_incremental.has(0, 0)) {  // joint training has the last row only
    task["backward_transfer"] = r.task_incremental.backward_transfer(last);
    task["forgetting"] = r.task_incremental.forgetting(last);
  }
  return {{"task_incremental", task},
          {"class_incremental", {{"accuracy_matrix", r.class_incremental.rows()},
                                 {"average_accuracy", r.class_incremental.average(last)}}},
          {"nll", r.nll}, {"ece", r.ece}, {"brier", r.brier}, {"per_task", costs}};
}

void write_csv(const std::string& path, const kprior::metrics::AccuracyMatrix& m) {
  std::ofstream csv(path);
  const int64_t t = m.num_tasks();
  // Tasks numbered from 1, as the console prints them and --stop-after-task counts them.
  csv << "after_task";
  for (int64_t j = 0; j < t; ++j) csv << ",task_" << j + 1;
  csv << "\n";
  for (int64_t i = 0; i < t; ++i) {
    if (!m.has(i, i)) continue;  // a partial run: the tasks learned so far
    csv << i + 1;
    for (int64_t j = 0; j < t; ++j) {
      csv << ",";
      if (j <= i) csv << fmt::format("{:.4f}", m.at(i, j));
    }
    csv << "\n";
  }
}

std::pair<double, double> mean_std(const std::vector<double>& v) {
  double mean = 0, var = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  for (double x : v) var += (x - mean) * (x - mean);
  return {mean, v.size() > 1 ? std::sqrt(var / static_cast<double>(v.size() - 1)) : 0.0};
}

// Mean and standard deviation over the seeds of the number at `at` in each run's entry (null
// where no run has it, e.g. joint training's backward transfer).
json across_seeds(const json& runs, const std::string& at) {
  std::vector<double> v;
  const json::json_pointer pointer(at);
  for (const auto& r : runs) {
    if (r.contains(pointer) && r[pointer].is_number()) v.push_back(r[pointer].get<double>());
  }
  if (v.empty()) return json();
  const auto [mean, sd] = mean_std(v);
  return {{"mean", mean}, {"std", sd}};
}

std::string checkpoint_path(const std::string& dir, int64_t seeds, uint64_t seed) {
  return dir + (seeds > 1 ? fmt::format("/checkpoint-seed{}.h5", seed) : std::string("/checkpoint.h5"));
}

void print_already_stopped(uint64_t seed, int64_t learned, int64_t num_tasks, int64_t stop_after) {
  fmt::print("seed {}: already stopped after task {} of {} (--stop-after-task {}); continue with a larger "
             "--stop-after-task, or none to finish the run\n",
             seed, learned, num_tasks, stop_after);
}

// --resume with a --stop-after-task that every seed's checkpoint has already reached: said
// (true) from the checkpoints alone, before minutes of reading data for nothing to learn.
bool already_stopped(const std::string& dir, int64_t seeds, uint64_t seed, int64_t stop_after) {
  if (stop_after <= 0) return false;
  std::vector<std::tuple<uint64_t, int64_t, int64_t>> stops;  // seed, tasks learned, tasks
  for (int64_t s = 0; s < seeds; ++s) {
    const auto run_seed = seed + static_cast<uint64_t>(s);
    const auto path = checkpoint_path(dir, seeds, run_seed);
    if (!std::filesystem::exists(path)) return false;
    const auto tree = kprior::checkpoint::read(path);
    const auto learned = tree.integer("learner@tasks_observed");
    const auto num_tasks = kprior::train::read_run_info(tree).num_tasks;
    if (stop_after > learned || learned >= num_tasks) return false;
    stops.emplace_back(run_seed, learned, num_tasks);
  }
  for (const auto& [s, learned, num_tasks] : stops) print_already_stopped(s, learned, num_tasks, stop_after);
  fmt::print("continue with: kprior-run --resume {}\n", dir);
  return true;
}

// A fresh run into a folder an earlier run wrote: that run's files go first, so that none of
// them sits beside this run's as if it were this run's (a results.json of other settings, a
// checkpoint that --resume would pick). Other files in the folder stay.
void remove_earlier_run(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) return;
  const auto starts = [](const std::string& name, const char* prefix) { return name.rfind(prefix, 0) == 0; };
  std::vector<std::string> removed;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    const auto ext = e.path().extension().string();
    const bool earlier = name == "results.json" || name == "accuracy.png" ||
                         (starts(name, "accuracy_matrix") && ext == ".csv") ||
                         (starts(name, "checkpoint") && (ext == ".h5" || name.find(".h5.tmp-") != std::string::npos)) ||
                         (starts(name, "example_scores") && ext == ".h5");
    if (earlier && e.is_regular_file()) removed.push_back(name);
  }
  if (removed.empty()) return;
  std::sort(removed.begin(), removed.end());
  std::string list;
  for (const auto& name : removed) {
    fs::remove(fs::path(dir) / name);
    list += (list.empty() ? "" : ", ") + name;
  }
  fmt::print("note: {} held an earlier run; removed its {} (--resume continues a run instead)\n", dir, list);
}

// Options a resumed run may change; everything else comes from its checkpoint.
// --jitter repairs a run whose next boundary found a singular FROMP kernel: every boundary
// from then on recomputes all memories' kernels with the new ε.
bool overridable(const std::string& name) {
  return name == "--threads" || name == "--data-dir" || name == "--stop-after-task" || name == "--resume" ||
         name == "--jitter";
}

// `path` made absolute against the working directory (not normalised: "link/.." must keep
// meaning what it meant here).
std::string absolute_path(const std::string& path) {
  std::error_code ec;
  const auto p = std::filesystem::absolute(path, ec);
  return ec ? path : p.string();
}

// The options given on the command line, as a JSON array of [name, values...] (for resuming;
// the overridable ones are kept but may be given again).
std::string given_options(const CLI::App& cli, const std::string& data_dir) {
  json out = json::array();
  for (const auto* o : cli.get_options()) {
    const auto name = o->get_name();
    if (o->count() == 0 || name == "--resume" || name == "--stop-after-task" || name == "--config" ||
        name.rfind("--", 0) != 0) {
      continue;
    }
    json entry = json::array({name});
    for (const auto& v : o->results()) entry.push_back(name == "--data-dir" ? absolute_path(v) : v);
    out.push_back(entry);
  }
  // The data folder is saved absolute, given or not: a run resumed from another working
  // directory still finds it.
  if (cli.get_option("--data-dir")->count() == 0) out.push_back(json::array({"--data-dir", absolute_path(data_dir)}));
  return out.dump();
}

// A checkpoint's config@json; a FileError naming the file when it is not JSON.
json parse_saved_config(const std::string& ckpt, const std::string& text) {
  try {
    return json::parse(text);
  } catch (const json::exception&) {
    throw kprior::FileError(ckpt, "attribute 'config@json' is not valid JSON");
  }
}

// A resumed run must see the data it was trained on: another --data-dir with the same shapes
// would train on silently. Checkpoints from before the fingerprint was recorded are not checked.
void require_same_data(const std::string& ckpt, const std::string& saved_config, const json& config) {
  const json saved = parse_saved_config(ckpt, saved_config);
  if (!saved.is_object() || !saved.contains("data_fingerprint")) return;
  if (saved["data_fingerprint"] != config["data_fingerprint"]) {
    throw kprior::FileError(ckpt, "was trained on other data than --data-dir " + config["data_dir"].get<std::string>() +
                                      " holds (" + (saved.contains("data_dir") ? "it was trained from " +
                                                    saved["data_dir"].dump() + "; " : std::string()) +
                                      "the tasks' classes, sizes, labels or images, or the boundary sample, differ): resume "
                                      "with that data");
  }
}

// --resume DIR: the run's options are those saved in DIR's checkpoint, plus the overridable
// ones given now.
std::vector<std::string> resumed_arguments(const std::vector<std::string>& args, const std::string& dir) {
  if (std::filesystem::is_regular_file(dir)) {
    const auto folder = std::filesystem::path(dir).parent_path().string();
    throw kprior::UsageError("--resume takes the run's output folder (here " + (folder.empty() ? "." : folder) +
                             "), not a checkpoint file");
  }
  std::string path = dir + "/checkpoint.h5";
  if (!std::filesystem::exists(path)) {
    std::vector<std::string> found;
    if (std::filesystem::is_directory(dir)) {
      for (const auto& e : std::filesystem::directory_iterator(dir)) {
        const auto name = e.path().filename().string();
        if (name.rfind("checkpoint-seed", 0) == 0 && e.path().extension() == ".h5") found.push_back(e.path().string());
      }
    }
    if (found.empty()) throw kprior::FileError(dir, "no checkpoint.h5 or checkpoint-seed*.h5 to resume from");
    std::sort(found.begin(), found.end());
    path = found.front();
  }
  const auto tree = kprior::checkpoint::read(path);
  const auto info = kprior::train::read_run_info(tree);
  // ewc+fr+replay ignored --fisher and --ewc-lambda before its checkpoints recorded the method
  // (learner@regularizers): such a run continues with what it trained with, GGN and λ = 1.
  const bool pin_combined = !tree.has_attr("learner@regularizers") &&
                            info.config_json.find("ewc+fr+replay") != std::string::npos;
  std::vector<std::string> out{args.front()};
  json saved;
  try {
    saved = json::parse(info.arguments);
  } catch (const json::exception&) {
    throw kprior::FileError(path, "attribute 'config@arguments' is not valid JSON");
  }
  const auto given_now = [&](const std::string& name) {
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == name || args[i].rfind(name + "=", 0) == 0) return true;
    }
    return false;
  };
  for (const auto& entry : saved) {
    if (!entry.is_array() || entry.empty() || !entry[0].is_string()) {
      throw kprior::FileError(path, "attribute 'config@arguments' is not a list of options");
    }
    if (given_now(entry[0].get<std::string>())) continue;  // an overridable option given again
    if (pin_combined && (entry[0] == "--fisher" || entry[0] == "--ewc-lambda")) continue;
    if (entry.size() == 2) {
      // --name=value: also right for a flag, whose saved value ("true") may not follow as a word.
      out.push_back(entry[0].get<std::string>() + "=" + entry[1].get<std::string>());
      continue;
    }
    for (const auto& v : entry) out.push_back(v.get<std::string>());
  }
  // A run saved before --lr-schedule existed trained with a constant rate: it continues so
  // (its configuration has no "lr_schedule"; today's IVON default is cosine).
  const json config = parse_saved_config(path, info.config_json);
  if (config.is_object() && !config.contains("lr_schedule")) out.push_back("--lr-schedule=constant");
  // The layout is part of a run (IVON draws its noise in the weights' memory order): a run
  // continues with the layout it used, the one `auto` resolved to when it started, whatever
  // `auto` means today; runs saved before --memory-format kept contiguous weights.
  bool format_given = false;
  for (const auto& entry : saved) format_given = format_given || entry[0].get<std::string>() == "--memory-format";
  if (config.is_object() && !format_given) {
    out.push_back("--memory-format=" + (config.contains("memory_format") ? config["memory_format"].get<std::string>()
                                                                         : std::string("contiguous")));
  }
  // An MLP keeps the hidden widths it was built with, whatever today's default for the
  // benchmark is (the CNN benchmarks' MLP default changed from none to 256,256).
  bool hidden_given = false;
  for (const auto& entry : saved) hidden_given = hidden_given || entry[0].get<std::string>() == "--hidden";
  if (config.is_object() && !hidden_given && config.contains("mlp") && config["mlp"].is_array() &&
      config["mlp"].size() >= 2) {
    const auto& widths = config["mlp"];  // input, hidden..., outputs
    std::string hidden;
    for (size_t k = 1; k + 1 < widths.size(); ++k) hidden += (hidden.empty() ? "" : ",") + widths[k].dump();
    if (!hidden.empty()) out.push_back("--hidden=" + hidden);
    else out.push_back("--hidden=none");
  }
  if (pin_combined) {
    out.push_back("--fisher=ggn");
    out.push_back("--ewc-lambda=1");
  }
  // The gradient clip is part of a run too: it continues with the one it trained with, whatever
  // the default is today (before it applied to FROMP only, every Adam run clipped).
  bool clip_given = false;
  for (const auto& entry : saved) clip_given = clip_given || entry[0].get<std::string>() == "--clip";
  if (config.is_object() && !clip_given && config.contains("grad_clip") && config["grad_clip"].is_number()) {
    out.push_back("--clip=" + config["grad_clip"].dump());
  }
  // The JPEG trees' boundary sample is part of a run too (its memories were chosen from it): it
  // continues with the size it used, whatever the default is today. Runs saved before it was
  // recorded took the first 20 files of each class, which no option reproduces.
  bool sample_given = false;
  for (const auto& entry : saved) sample_given = sample_given || entry[0].get<std::string>() == "--boundary-sample";
  if (config.is_object() && !sample_given) {
    if (config.contains("boundary_sample") && config["boundary_sample"].is_number_integer()) {
      out.push_back("--boundary-sample=" + config["boundary_sample"].dump());
    } else if (config.contains("tasks") &&
               (config["tasks"] == "split-tinyimagenet" || config["tasks"] == "split-imagenet")) {
      fmt::print("note: this run was saved before the boundary sample was a random draw (it took each class's "
                 "first 20 files); its remaining tasks choose their memories from a random 20 per class\n");
    }
  }
  for (size_t i = 1; i < args.size(); ++i) {
    const auto name = args[i].substr(0, args[i].find('='));
    if (!overridable(name)) {
      if (args[i].rfind("--", 0) == 0) {
        throw kprior::UsageError("--resume takes the run's options from its checkpoint; " + name +
                                 " cannot be changed (only --threads, --data-dir, --stop-after-task, --jitter)");
      }
      continue;
    }
    out.push_back(args[i]);
    if (args[i].find('=') == std::string::npos && i + 1 < args.size()) out.push_back(args[++i]);
  }
  return out;
}

// --example-scores: every training example of the task just learned, scored with the model
// and posterior of this boundary (the ones the memory selection used), and which were kept.
void write_example_scores(kprior::train::ContinualLearner& learner, const kprior::data::Task& task,
                          kprior::checkpoint::Tree& tree, const std::string& path) {
  using namespace kprior;
  std::vector<torch::Tensor> variances;
  std::string source = "none";
  try {
    const auto q = learner.posterior();
    variances = q.variance();
    source = q.source();
  } catch (const Error&) {
    // No posterior (e.g. fine-tuning with Adam): Tr Λ only, and the file says so.
  }
  const auto s = memory::score_examples(learner.model(), task, variances);
  const auto& mem = learner.memory();
  const bool remembered = !mem.empty() && mem.back().task == task.id;
  const std::string group = "task_" + std::to_string(task.id);
  checkpoint::put_example_scores(tree, group, s, remembered ? mem.back().indices : torch::Tensor());
  tree.put_attr(group + "@posterior", source);
  tree.put_attr("@content", std::string("kprior-run example scores"));
  checkpoint::write(tree, path);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Run a continual-learning experiment: train on each task of a sequence in turn\n"
               "with the chosen method(s), evaluate all tasks seen so far after each, and\n"
               "write results.json and accuracy_matrix.csv to --out, with a checkpoint\n"
               "(checkpoint.h5) after every task that --resume continues from. Defaults are\n"
               "the published settings of the benchmark (FROMP, NeurIPS 2020).",
               "kprior-run"};
  std::string tasks = "split-mnist", method = "fromp", optimizer = "adam", select = "auto";
  std::string data_dir = "data", out_dir = "out/kprior-run", hidden, device_name = "cpu";
  int64_t epochs = 0, batch_size = 0, memory = -1, seeds = 1;
  double lr = 0, tau = 0, clip = -1, ewc_lambda = 1.0, kprior_delta = 0.1, replay_weight = 1.0;
  uint64_t seed = 0;
  int threads = 0;
  std::string fisher = "ggn", ewc_mode = "online";
  cli.add_option("--tasks", tasks,
                 "task sequence: split-mnist (5x2 classes), permuted-mnist (10 permutations),\n"
                 "split-fashion (5x2), split-cifar (CIFAR-10 then 5x10 CIFAR-100 classes),\n"
                 "split-cifar100 (10x10), split-tinyimagenet (10 tasks of C/10 classes),\n"
                 "split-imagenet (10 tasks of C/10 classes in an order shuffled with the fixed\n"
                 "seed 1993; both JPEG trees of C classes, C a multiple of 10 and at least 20,\n"
                 "training streamed from the files), split-h5 (an HDF5 array file as --data-dir,\n"
                 "or a folder holding data.h5: README)")->capture_default_str();
  std::string model_name;
  cli.add_option("--model", model_name,
                 "mlp, lenet5, cifarnet or resnet18 (default: the benchmark's: mlp for the\n"
                 "MNIST family, cifarnet for split-cifar and split-cifar100, resnet18 for\n"
                 "split-tinyimagenet and split-imagenet); resnet18 takes the CIFAR stem (3x3\n"
                 "conv, no max-pooling) for images of at most 64x64, else ImageNet's");
  cli.add_option("--method", method,
                 "finetune, ewc (online by default: one Fisher summed over tasks, anchored at\n"
                 "the last weights; --ewc-mode), fromp, replay, kprior, ewc+fr+replay (its\n"
                 "replay memory M2 is a second, random memory of --memory-per-task),\n"
                 "ivon-prior (needs --optimizer ivon), a comma-separated combination (e.g.\n"
                 "ewc,fromp,replay), or joint (all tasks at once: the upper bound; not on the\n"
                 "JPEG trees, whose training images are streamed)")->capture_default_str();
  cli.add_option("--optimizer", optimizer, "ivon, adam or sgd")->capture_default_str();
  auto* o_lr = cli.add_option("--lr", lr, "learning rate (default: published Adam rate; ivon 0.1; sgd 0.01)");
  std::string lr_schedule;
  auto* o_schedule = cli.add_option("--lr-schedule", lr_schedule,
                                    "learning rate within each task: constant, or cosine (decays to 0 over the\n"
                                    "task's steps, restarting at every task) (default: cosine with ivon except\n"
                                    "on permuted-mnist, else constant as published)");
  auto* o_epochs = cli.add_option("--epochs", epochs, "epochs per task (default: published; 10 with ivon and fromp on split-mnist)");
  auto* o_batch = cli.add_option("--batch-size", batch_size, "mini-batch size (default: published; 8 with ivon and fromp on split-mnist)");
  cli.add_option("--hidden", hidden, "MLP hidden widths, comma-separated, or none (default: published; 256,256\nwhere the published model is a CNN; --model mlp only)");
  auto* o_memory = cli.add_option("--memory-per-task", memory, "remembered examples per task (default: published; with fromp at most\nwhat its kernels fit in 8 GiB, e.g. 145 for ResNet-18 on TinyImageNet)");
  cli.add_option("--select", select,
                 "memory selection: lambda (Tr Λ), mpe, random; auto = random for replay alone\n"
                 "(true labels of the most ambiguous examples warp the boundary), else lambda")->capture_default_str();
  auto* o_tau = cli.add_option("--tau", tau, "FROMP τ, the function term's weight against the mean loss\n(default: published; with ivon published × 2e-4)");
  double jitter = 0, prior_precision = 0;
  auto* o_prior = cli.add_option("--prior-precision", prior_precision,
                                 "δ of the Laplace posterior used for FROMP's kernels with adam/sgd\n(default: published)");
  int64_t boundary_sample = kprior::data::kBoundarySamplePerClass;
  auto* o_boundary_sample =
      cli.add_option("--boundary-sample", boundary_sample,
                     "JPEG trees (split-tinyimagenet, split-imagenet): training images per class decoded\n"
                     "into memory for each task boundary (memory selection, Fisher, soft targets), a\n"
                     "fixed random draw; the memory per task is chosen from them (0 = all)")
          ->check(kprior::app::integer_in(0, 1000000))
          ->capture_default_str();
  auto* o_jitter = cli.add_option("--jitter", jitter, "FROMP kernel jitter ε (default: published for adam, 1e-2 for ivon)");
  auto* o_clip = cli.add_option("--clip", clip,
                                "global gradient-norm clip, 0 = none (default: FROMP's published clip with\n"
                                "adam and fromp, scaled with --tau; none otherwise)");
  // IVON's defaults are train::ivon_settings (measured; documented there).
  double hess_init = 0, ivon_wd = 1e-4;
  auto* o_hess = cli.add_option("--hess-init", hess_init,
                                "IVON's initial Hessian h0 (sets the first posterior's spread,\n"
                                "σ² = 1/(N (h0 + δ)); default 100 with fromp, else 1)");
  double ivon_beta2 = 0.99999;
  cli.add_option("--ivon-beta2", ivon_beta2, "IVON's β2 (momentum of its Hessian estimate)")->capture_default_str();
  cli.add_option("--ivon-wd", ivon_wd, "IVON's weight decay δ (prior precision per example)")->capture_default_str();
  cli.add_option("--fisher", fisher, "EWC Fisher: ggn, empirical, true")->capture_default_str();
  cli.add_option("--ewc-lambda", ewc_lambda, "EWC λ (1 = Laplace weighting)")->capture_default_str();
  auto* o_ewc_mode = cli.add_option("--ewc-mode", ewc_mode,
                 "online (one Fisher summed over the tasks, anchored at the latest weights;\n"
                 "Schwarz et al. 2018) or offline (one Fisher and anchor per past task, the\n"
                 "original EWC of Kirkpatrick et al. 2017)")
      ->check(CLI::IsMember({"online", "offline"}))
      ->capture_default_str();
  cli.add_option("--kprior-delta", kprior_delta, "δ of the weight term of K-prior and of ewc+fr+replay")->capture_default_str();
  cli.add_option("--replay-weight", replay_weight, "weight of the replay loss")->capture_default_str();
  cli.add_option("--seed", seed, "first seed (initialisation, shuffling, noise)")
      ->check(CLI::Validator([](std::string& v) { return v.rfind('-', 0) == 0 ? std::string("must be >= 0") : std::string(); },
                             ""))
      ->capture_default_str();
  cli.add_option("--seeds", seeds, "number of seeds to run (seed, seed+1, ...); mean ± std reported")->capture_default_str();
  cli.add_option("--data-dir", data_dir, "folder with the bundled data (mnist10k/, fashion-mnist/) or with IDX files;\n"
                 "for CIFAR the folder holding cifar-10-batches-bin/ and cifar-100-binary/, for\n"
                 "the JPEG trees the one holding tiny-imagenet-200/ or imagenet/ (README)")->capture_default_str();
  cli.add_option("--out", out_dir, "output folder")->capture_default_str();
  bool plot = false, example_scores = false;
  cli.add_flag("--plot", plot,
               "also draw accuracy.png (accuracy matrix and average accuracy after each task)\n"
               "with notebooks/kprior_plot.py; needs Python 3 with matplotlib");
  cli.add_flag("--example-scores", example_scores,
               "at each task boundary, score every training example of the task held in memory\n"
               "(all of it, or the boundary sample of a streamed JPEG task) (Tr Λ, logit\n"
               "variance and MPE score when there is a posterior) and mark the remembered ones:\n"
               "example_scores.h5 (example_scores-seed<S>.h5 with --seeds > 1)");
  cli.add_option("--device", device_name, "cpu or cuda")->capture_default_str();
  cli.add_option("--threads", threads, "LibTorch threads, and the JPEG trees' decoding threads (0 = all cores;\n"
                 "at most the cores)")
      ->check(kprior::app::integer_in(0, 4096))
      ->capture_default_str();
  std::string precision_name = "fp32", memory_format_name = "auto";
  cli.add_option("--precision", precision_name,
                 "fp32, or bf16: each training step's forward passes (batch and memory) under\n"
                 "bf16 autocast; parameters, gradients and the optimizer's state stay fp32, and\n"
                 "evaluation and the task-boundary work (memory, posterior, kernels) run in fp32")
      ->capture_default_str();
  cli.add_option("--memory-format", memory_format_name,
                 "layout of the convolution weights and activations: auto (channels-last for\n"
                 "a CNN on cuda, where it is faster), contiguous or channels-last")->capture_default_str();
  std::string resume_dir;
  int64_t stop_after = 0;
  cli.add_option("--resume", resume_dir,
                 "continue the run whose checkpoint is in this folder after its last complete\n"
                 "task, with its saved options (only --threads, --data-dir, --stop-after-task\n"
                 "and --jitter may be given too)");
  cli.add_option("--stop-after-task", stop_after,
                 "stop once this many tasks are learned (checkpoint kept; continue with\n"
                 "--resume); 0 = run to the end")->capture_default_str();
  cli.set_config("--config", "", "read options from a TOML/INI file (CLI11 format)");
  cli.allow_config_extras(false);  // a misspelt option in a config file is an error, not ignored
  cli.set_version_flag("--version", kprior::version());

  std::vector<std::string> args(argv, argv + argc);
  bool resume_given = false;  // on the command line, where its saved options are read
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] != "--resume" && args[i].rfind("--resume=", 0) != 0) continue;
    if (args[i] == "--resume" && i + 1 == args.size()) break;  // CLI11 reports the missing value
    const auto dir = args[i] == "--resume" ? args[i + 1] : args[i].substr(9);
    // The saved options must be known before parsing; errors map to exit codes as in the run.
    const int rc = kprior::app::guarded("kprior-run", [&] {
      if (dir.empty()) throw kprior::UsageError("--resume needs the output folder of the run to continue");
      args = resumed_arguments(args, dir);
      return 0;
    });
    if (rc != 0) return rc;
    resume_given = true;
    break;
  }
  std::vector<char*> arg_ptrs;
  for (auto& a : args) arg_ptrs.push_back(a.data());
  return kprior::app::run_guarded(cli, static_cast<int>(arg_ptrs.size()), arg_ptrs.data(), [&] {
    using namespace kprior;
    const auto pub = train::published_settings(tasks);
    if (seeds < 1) throw UsageError("--seeds must be >= 1");
    if (stop_after < 0) throw UsageError("--stop-after-task must be >= 0");
    if (!resume_dir.empty() && !resume_given) {
      // Its saved options replace the given ones before parsing, which a config file comes too late for.
      throw UsageError("--resume must be given on the command line, not in a --config file");
    }
    if (!resume_dir.empty()) out_dir = resume_dir;
    if (std::filesystem::exists(out_dir) && !std::filesystem::is_directory(out_dir)) {
      throw FileError(out_dir, "is a file, not an output folder");  // before any data is read
    }
    const std::string arguments = given_options(cli, data_dir);
    // Flag names in the messages; the library checks the same ranges in its own terms.
    if (o_lr->count() > 0) require_positive("--lr", lr);
    if (o_tau->count() > 0) require_positive("--tau", tau);
    if (o_jitter->count() > 0) require_positive("--jitter", jitter);
    if (o_clip->count() > 0) require_non_negative("--clip", clip);
    if (o_prior->count() > 0) require_positive("--prior-precision", prior_precision);
    if (o_hess->count() > 0) require_positive("--hess-init", hess_init);
    require_non_negative("--ewc-lambda", ewc_lambda);
    require_non_negative("--kprior-delta", kprior_delta);
    require_non_negative("--replay-weight", replay_weight);
    require_non_negative("--ivon-wd", ivon_wd);
    if (!(ivon_beta2 >= 0 && ivon_beta2 <= 1)) throw UsageError(fmt::format("--ivon-beta2 must be in [0, 1], got {}", ivon_beta2));
    if (device_name != "cpu" && device_name != "cuda") throw UsageError("--device must be cpu or cuda");
    if (device_name == "cuda" && !torch::cuda::is_available()) throw UsageError("--device cuda: no CUDA device available in this build");
    const torch::Device device(device_name == "cuda" ? torch::kCUDA : torch::kCPU);
    const auto precision = nn::parse_precision(precision_name);
    const auto memory_format_choice = nn::parse_memory_format(memory_format_name);
    const auto widths_hidden = hidden.empty() ? pub.hidden : parse_widths(hidden);
    const auto model_kind = nn::parse_model(model_name.empty() ? pub.model : model_name);
    if (!hidden.empty() && model_kind != nn::ModelKind::MLP) throw UsageError("--hidden applies to --model mlp only");
    regularize::MethodSettings ms;
    // Published settings unless the option was given (CLI11 counts given options).
    auto given = [](const CLI::Option* o) { return o->count() > 0; };
    const auto kind = train::parse_optimizer(optimizer);
    const bool ivon = kind == train::OptimizerKind::IVON;
    const bool with_fromp = method.find("fromp") != std::string::npos;
    const auto iv = train::ivon_settings(tasks, with_fromp);
    ms.fromp.tau(given(o_tau) ? tau : (ivon ? pub.tau * iv.tau_scale : pub.tau))
        .jitter(given(o_jitter) ? jitter : (ivon ? iv.jitter : pub.jitter));
    const auto curvature = fisher == "ggn"         ? linearize::Curvature::GGN
                           : fisher == "empirical" ? linearize::Curvature::EmpiricalFisher
                           : fisher == "true"      ? linearize::Curvature::TrueFisher
                                                   : throw UsageError("--fisher must be ggn, empirical or true");
    ms.ewc.lambda(ewc_lambda).fisher(curvature).online(ewc_mode == "online");
    ms.kprior.delta(kprior_delta);
    ms.combined.delta(kprior_delta).fisher(curvature).weight_lambda(ewc_lambda);  // its weight term is EWC's
    ms.replay.weight(replay_weight);
    // FROMP's published clip (METHODS.md §4) belongs to FROMP's Adam runs: the other methods'
    // papers clip nothing. It is c·τ on our ∇(ℓ + τ·penalty) (c on the published ∇ℓ/τ +
    // ∇penalty), so it follows --tau. Clipping IVON's gradients would also shrink its Hessian
    // estimate (ĥ uses ĝ), so IVON runs unclipped.
    const double default_clip = kind == train::OptimizerKind::Adam && with_fromp && pub.tau > 0
                                    ? pub.grad_clip / pub.tau * ms.fromp.tau() : 0.0;
    // Measured on split-Fashion (seed 0): replay 87.1% with Tr Λ memory, 97.9% random.
    if (select == "auto") select = method == "replay" ? "random" : "lambda";
    if (method.find("ivon-prior") != std::string::npos && kind != train::OptimizerKind::IVON) {
      throw UsageError("ivon-prior regularizes with IVON's posterior: it needs --optimizer ivon");
    }
    auto options = train::LearnerOptions()
                       .optimizer(kind)
                       .lr(given(o_lr) ? lr : (kind == train::OptimizerKind::Adam ? pub.adam_lr : 0))
                       .lr_schedule(given(o_schedule) ? train::parse_lr_schedule(lr_schedule)
                                                      : (ivon ? iv.lr_schedule : train::LrSchedule::Constant))
                       .epochs(given(o_epochs) ? epochs : (ivon ? iv.epochs : pub.epochs))
                       .batch_size(given(o_batch) ? batch_size : (ivon ? iv.batch_size : pub.batch_size))
                       .grad_clip(given(o_clip) ? clip : default_clip)
                       .memory_per_task(given(o_memory) ? memory : pub.memory_per_task)
                       .selection(memory::parse_selection(select))
                       .laplace_prior(given(o_prior) ? prior_precision : pub.prior_precision)
                       .hess_init(given(o_hess) ? hess_init : iv.hess_init)
                       .weight_decay(ivon_wd)
                       .hess_beta(ivon_beta2)
                       .precision(precision);
    options.validate();
    // Validate names and memory needs before loading any data.
    if (method != "joint" && (method.rfind("joint,", 0) == 0 || method.find(",joint") != std::string::npos)) {
      throw UsageError("joint (training on all tasks at once) cannot be combined with other methods");
    }
    const bool needs_memory =
        method != "joint" && regularize::needs_memory(regularize::make_regularizers(method, ms), options.memory_per_task());
    if (example_scores && method == "joint") {
      throw UsageError("--example-scores scores each task at its boundary; joint training has none");
    }
    if (method == "joint" && (stop_after > 0 || !resume_dir.empty())) {
      throw UsageError("joint training learns all tasks in one go: --stop-after-task and --resume do not apply");
    }
    const bool jpeg_tree = tasks == "split-tinyimagenet" || tasks == "split-imagenet";
    if (method == "joint" && jpeg_tree) {
      throw UsageError("joint training needs every task's data in memory; " + tasks + " streams its training "
                       "images from the files");
    }
    if (!resume_dir.empty() && already_stopped(out_dir, seeds, seed, stop_after)) return 0;  // before reading data
    std::optional<app::Plotter> plotter;
    if (plot) plotter = app::find_plotter();  // before the long work: a missing matplotlib is a usage error
    reuse_large_allocations();  // large per-batch tensors: no page-fault churn
    const int n_threads = set_threads(threads);
    data::BenchmarkOptions data_options;
    data_options.seed = seed;
    data_options.threads = n_threads;
    if (given(o_boundary_sample)) data_options.boundary_sample_per_class = boundary_sample;
    const auto load_start = std::chrono::steady_clock::now();
    if (jpeg_tree) {  // minutes for ImageNet, before anything else is printed
      fmt::print("reading {} from {}: decoding the val set and the boundary sample ...\n", tasks, data_dir);
      std::fflush(stdout);
    }
    auto seq = data::make_benchmark(tasks, data_dir, data_options);
    if (jpeg_tree) {
      int64_t val = 0, sample = 0;
      for (const auto& t : seq.tasks) {
        val += t.test.size();
        sample += t.train.size();
      }
      fmt::print("read {} val and {} boundary images in {:.1f} s\n", val, sample,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count());
    }
    if (given(o_boundary_sample) && !seq.tasks.front().train_stream) {
      fmt::print("note: --boundary-sample has no effect: {} holds its whole training set in memory\n", tasks);
    }
    for (auto& t : seq.tasks) {
      t.train = t.train.to(device);
      // A streamed task's test set can be large (ImageNet's val: ~30 GB as floats): it stays
      // in host memory and evaluation moves it to the device chunk by chunk.
      if (!t.train_stream) t.test = t.test.to(device);
    }
    const auto example = seq.tasks[0].train.inputs.sizes().slice(1);
    const std::vector<int64_t> input_shape(example.begin(), example.end());
    std::vector<int64_t> widths{seq.tasks[0].train.inputs[0].numel()};
    widths.insert(widths.end(), widths_hidden.begin(), widths_hidden.end());
    widths.push_back(seq.num_outputs);
    const std::string model_text = model_kind == nn::ModelKind::MLP
                                       ? "MLP " + join(widths)
                                       : fmt::format("{} ({} outputs)", nn::to_string(model_kind), seq.num_outputs);
    auto probe = nn::make_model(model_kind, input_shape, seq.num_outputs, widths_hidden);
    // Auto resolved once here, so the printed and saved configuration name the layout used.
    options.memory_format(nn::resolve_memory_format(memory_format_choice, *probe, device.is_cuda()));
    if (method.find("fromp") != std::string::npos) {
      // FROMP holds a task's whole memory in its kernels, one class row at a time at the least.
      // A default memory that cannot fit (ResNet-18 on large images) becomes the most that
      // fits; a given one that cannot fit is refused, before hours of training.
      const auto x1 = seq.tasks[0].train.inputs.slice(0, 0, 1).cpu();
      const int64_t fit = linearize::max_kernel_inputs(*probe, x1, 1);
      if (!given(o_memory) && options.memory_per_task() > fit && fit > 0) {
        fmt::print("note: FROMP's kernels over {} points per task would exceed their {} GiB limit with {} on these "
                   "inputs; using {} points per task, the most that fit (--memory-per-task to choose)\n",
                   options.memory_per_task(), linearize::kKernelFloats * x1.element_size() >> 30,
                   nn::to_string(model_kind), fit);
        options.memory_per_task(fit);
      }
      linearize::check_kernel_memory(*probe, x1, options.memory_per_task(), 1);
    }
    if (needs_memory) {
      for (const auto& t : seq.tasks) train::check_memory_fits(options.memory_per_task(), t);
    } else if (given(o_memory)) {
      fmt::print("note: --memory-per-task has no effect: method {} keeps no memory\n", method);
    }
    if (given(o_ewc_mode) && ("," + method + ",").find(",ewc,") == std::string::npos) {
      fmt::print("note: --ewc-mode has no effect: it applies to the ewc method only (method {})\n", method);
    }
    if (given(o_jitter) && !with_fromp) {
      fmt::print("note: --jitter has no effect: it is FROMP's kernel jitter (method {})\n", method);
    }
    if (memory_format_choice == nn::MemoryFormat::ChannelsLast && !nn::has_conv_weights(*probe)) {
      fmt::print("note: --memory-format channels-last has no effect on a model without convolutions\n");
    }
    const bool tty = isatty(fileno(stdout)) != 0;
    fmt::print("kprior-run {}: {} ({} tasks), method {}, optimizer {} (lr {}, {}), {}, {} epochs of batch {}, "
               "memory {}, {} seed(s), {} threads, {} ({}, {})\n",
               version(), tasks, seq.size(), method, optimizer, options.effective_lr(),
               train::to_string(options.lr_schedule()),
               model_text, options.epochs(), options.batch_size(),
               !needs_memory ? std::string("none")
               : method.find("ewc+fr+replay") != std::string::npos
                   ? fmt::format("{0}/task ({1}) + {0}/task (random, ewc+fr+replay's M2)", options.memory_per_task(), select)
                   : fmt::format("{}/task ({})", options.memory_per_task(), select),
               seeds,
               n_threads, device_name, nn::to_string(precision), nn::to_string(options.memory_format()));

    const json config = {{"tasks", tasks}, {"method", method}, {"optimizer", optimizer},
                         {"lr", options.effective_lr()}, {"lr_schedule", train::to_string(options.lr_schedule())},
                         {"epochs", options.epochs()},
                         {"batch_size", options.batch_size()}, {"model", nn::to_string(model_kind)},
                         {"mlp", model_kind == nn::ModelKind::MLP ? json(widths) : json()},
                         {"memory_per_task", options.memory_per_task()}, {"select", select},
                         {"tau", ms.fromp.tau()}, {"jitter", ms.fromp.jitter()},
                         {"grad_clip", options.grad_clip()}, {"prior_precision", options.laplace_prior()},
                         {"fisher", fisher}, {"ewc_lambda", ewc_lambda}, {"ewc_mode", ewc_mode}, {"kprior_delta", kprior_delta},
                         {"replay_weight", replay_weight}, {"hess_init", options.hess_init()}, {"ivon_weight_decay", ivon_wd}, {"ivon_beta2", ivon_beta2},
                         {"seed", seed}, {"seeds", seeds},
                         {"device", device_name}, {"precision", nn::to_string(precision)},
                         {"memory_format", nn::to_string(options.memory_format())},
                         {"threads", n_threads}, {"data_dir", absolute_path(data_dir)},
                         {"boundary_sample", jpeg_tree ? json(data_options.boundary_sample_per_class) : json()},
                         {"data_fingerprint", fmt::format("{:016x}", data::sequence_fingerprint(seq))}};
    if (resume_dir.empty()) remove_earlier_run(out_dir);
    json runs = json::array();
    std::vector<double> averages, nlls, eces;
    bool stopped = false;  // --stop-after-task applies to every seed: each trains up to it
    for (int64_t s = 0; s < seeds; ++s) {
      const uint64_t run_seed = seed + static_cast<uint64_t>(s);
      torch::manual_seed(run_seed);
      auto model = nn::make_model(model_kind, input_shape, seq.num_outputs, widths_hidden);
      model->to(device);
      train::Callbacks cb;
      cb.on_epoch_end = [&](const train::Progress& p) { print_progress(p, seq.size(), tty); };
      StepProgress steps(seq.size(), tty);
      cb.on_batch_end = [&](const train::BatchProgress& p) { steps.batch(p); };
      cb.on_boundary_start = [&](int64_t t) { steps.boundary(t); };
      train::ContinualLearner* learner_ptr = nullptr;  // the callback runs inside the learner below
      const std::string scores_path = out_dir + (seeds > 1 ? fmt::format("/example_scores-seed{}.h5", run_seed)
                                                           : std::string("/example_scores.h5"));
      // A resumed run adds its tasks to the scores written before the interruption.
      checkpoint::Tree scores_tree = !resume_dir.empty() && std::filesystem::exists(scores_path)
                                         ? checkpoint::read(scores_path) : checkpoint::Tree();
      if (example_scores) {
        cb.on_task_end = [&](int64_t t) {
          write_example_scores(*learner_ptr, seq.tasks[static_cast<size_t>(t)], scores_tree, scores_path);
        };
      }
      const bool joint = method == "joint";
      auto seed_ms = ms;
      seed_ms.combined.seed(run_seed);
      train::ContinualLearner learner(model, regularize::make_regularizers(joint ? "finetune" : method, seed_ms),
                                      train::LearnerOptions(options).seed(run_seed), cb);
      learner_ptr = &learner;
      const auto on_row = [tty](int64_t t, const std::vector<double>& accs) {
        double mean = 0;
        std::string row;
        for (double a : accs) {
          mean += a;
          row += fmt::format(" {:.1f}", 100 * a);
        }
        fmt::print("{}after task {}: accuracy (%){}  | average {:.2f}\n", tty ? app::kClearLine : "", t + 1, row,
                   100 * mean / static_cast<double>(accs.size()));
      };
      app::create_output_dir(out_dir);
      const auto ckpt = checkpoint_path(out_dir, seeds, run_seed);
      std::optional<train::SequenceResult> resumed;
      if (!resume_dir.empty() && !joint && std::filesystem::exists(ckpt)) {
        const auto tree = checkpoint::read(ckpt);
        const auto info = train::read_run_info(tree);
        if (info.seed != run_seed) throw FileError(ckpt, "is the checkpoint of another seed");
        require_same_data(ckpt, info.config_json, config);
        resumed = train::load_run_checkpoint(tree, learner);
        if (stop_after > 0 && stop_after <= learner.tasks_observed() && learner.tasks_observed() < seq.size()) {
          // Nothing to learn before the stop (the run would otherwise train one more task).
          print_already_stopped(run_seed, learner.tasks_observed(), seq.size(), stop_after);
          stopped = true;
          continue;
        }
        fmt::print("seed {}: resuming after task {} of {} from {}\n", run_seed, learner.tasks_observed(), seq.size(), ckpt);
      }
      train::SequenceHooks hooks;
      hooks.on_row = on_row;
      const auto csv_path = out_dir + (seeds > 1 ? fmt::format("/accuracy_matrix-seed{}.csv", run_seed)
                                                 : std::string("/accuracy_matrix.csv"));
      hooks.after_task = [&](int64_t, const train::SequenceResult& partial) {
        train::save_run_checkpoint(ckpt, learner, partial,
                                   {config.dump(), arguments, tasks, seq.size(), run_seed});
        write_csv(csv_path, partial.task_incremental);  // the rows so far, for a stopped or running run
      };
      hooks.stop = [&](int64_t t) { return stop_after > 0 && t + 1 >= stop_after; };
      const auto result = joint ? train::run_joint(learner, seq)
                                : train::run_sequence(learner, seq, hooks, resumed ? &*resumed : nullptr);
      if (!joint && stop_after > 0 && learner.tasks_observed() < seq.size()) {
        fmt::print("{}stopped after task {} of {}\n", seeds > 1 ? fmt::format("seed {}: ", run_seed) : "",
                   learner.tasks_observed(), seq.size());
        stopped = true;
        continue;
      }
      const int64_t last = seq.size() - 1;
      averages.push_back(result.task_incremental.average(last));
      nlls.push_back(result.nll);
      eces.push_back(result.ece);
      auto r = result_json(result);
      r["seed"] = run_seed;
      runs.push_back(r);
      if (!joint) write_csv(csv_path, result.task_incremental);
      fmt::print("seed {}: average accuracy {:.2f}% (task-incremental), {:.2f}% (class-incremental), "
                 "BWT {}, NLL {:.4f}, ECE {:.4f}\n",
                 run_seed, 100 * averages.back(), 100 * result.class_incremental.average(last),
                 joint ? std::string("n/a") : fmt::format("{:+.2f}", 100 * result.task_incremental.backward_transfer(last)),
                 result.nll, result.ece);
    }
    if (stopped) {  // results.json summarises whole runs only
      if (plotter) fmt::print("note: --plot draws the finished run: it is drawn when the resumed run ends\n");
      fmt::print("continue with: kprior-run --resume {}\n", out_dir);
      return 0;
    }
    const auto [acc_mean, acc_std] = mean_std(averages);
    // Which classes each task holds (split-imagenet's are shuffled), by name where the data
    // names them, so that other tools need not redo the shuffle.
    json task_list = json::array();
    for (const auto& t : seq.tasks) {
      json entry = {{"task", t.id + 1}, {"classes", t.classes}};
      if (!seq.class_names.empty()) {
        json names = json::array();
        for (int64_t c : t.classes) names.push_back(seq.class_names[static_cast<size_t>(c)]);
        entry["class_names"] = names;
      }
      task_list.push_back(entry);
    }
    json results = {
        {"kprior_version", version()},
        {"torch_version", TORCH_VERSION},
        {"config", config},
        {"task_classes", task_list},
        {"average_accuracy_mean", acc_mean},
        {"average_accuracy_std", acc_std},
        {"nll_mean", mean_std(nlls).first},
        {"ece_mean", mean_std(eces).first},
        {"across_seeds",
         {{"task_incremental_average_accuracy", across_seeds(runs, "/task_incremental/average_accuracy")},
          {"class_incremental_average_accuracy", across_seeds(runs, "/class_incremental/average_accuracy")},
          {"backward_transfer", across_seeds(runs, "/task_incremental/backward_transfer")},
          {"forgetting", across_seeds(runs, "/task_incremental/forgetting")},
          {"nll", across_seeds(runs, "/nll")},
          {"ece", across_seeds(runs, "/ece")},
          {"brier", across_seeds(runs, "/brier")}}},
        {"runs", runs}};
    std::ofstream(out_dir + "/results.json") << results.dump(2) << "\n";
    if (plotter) app::draw(*plotter, "run", out_dir, out_dir + "/accuracy.png");
    fmt::print("average accuracy {:.2f} ± {:.2f}% over {} seed(s); results in {}\n", 100 * acc_mean,
               100 * acc_std, seeds, out_dir);
    return 0;
  });
}
