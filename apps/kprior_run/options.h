#pragma once
// kprior-run's command line: its options, the checks made before any data is read, and the
// settings they resolve to (the benchmark's published ones where an option is not given).
#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "kprior/data/benchmarks.h"
#include "kprior/regularize/factory.h"
#include "kprior/train/continual_learner.h"

namespace kprior_run {

/// Every option's value as given, or its default (0 or -1 where the benchmark's published
/// setting applies instead).
struct Options {
  std::string tasks = "split-mnist", model, method = "fromp", optimizer = "adam", lr_schedule;
  std::string select = "auto", hidden, fisher = "ggn", ewc_mode = "online";
  std::string data_dir = "data", out_dir = "out/kprior-run", device = "cpu", precision = "fp32";
  std::string memory_format = "auto", resume_dir;
  int64_t epochs = 0, batch_size = 0, memory = -1, seeds = 1, stop_after = 0;
  int64_t boundary_sample = kprior::data::kBoundarySamplePerClass;
  double lr = 0, tau = 0, jitter = 0, clip = -1, prior_precision = 0;
  double hess_init = 0, ivon_beta2 = 0.99999, ivon_wd = 1e-4;
  double ewc_lambda = 1.0, kprior_delta = 0.1, replay_weight = 1.0;
  uint64_t seed = 0;
  int threads = 0;
  bool plot = false, example_scores = false;
};

/// Declares kprior-run's options on `cli`, bound to `o`.
void add_options(CLI::App& cli, Options& o);

/// Whether the option `name` was given (on the command line or in a --config file).
bool given(const CLI::App& cli, const std::string& name);

/// Refuses (kprior::UsageError, or kprior::FileError for --out naming a file) values and
/// combinations that cannot run, with the option's name. `resume_given`: --resume came on
/// the command line, where its saved options were read.
void check_options(const CLI::App& cli, const Options& o, bool resume_given);

/// The regularizers' settings: the benchmark's published ones (IVON's where it trains) unless
/// given.
kprior::regularize::MethodSettings method_settings(const CLI::App& cli, const Options& o);

/// The learner's settings, likewise; validated. `ms` gives FROMP's τ, which the default
/// gradient clip follows.
kprior::train::LearnerOptions learner_options(const CLI::App& cli, const Options& o,
                                              const kprior::regularize::MethodSettings& ms);

/// Refuses method combinations that cannot run (joint with others, joint with --resume,
/// --stop-after-task, --example-scores or a streamed benchmark).
void check_method(const Options& o);

/// --select auto: random for replay alone, else lambda.
std::string memory_selection(const Options& o);

/// The JPEG-tree benchmarks, whose training images are streamed from the files.
bool is_jpeg_tree(const std::string& tasks);

/// --hidden: comma-separated widths, or none.
std::vector<int64_t> parse_widths(const std::string& text);
std::string join(const std::vector<int64_t>& v);

}  // namespace kprior_run
