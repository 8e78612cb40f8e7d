#pragma once
// kprior-run's checkpoints and --resume: where each seed's checkpoint lives, the options a
// resumed run takes from it, and the checks that it continues on the same data.
#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace kprior_run {

/// DIR/checkpoint.h5, or DIR/checkpoint-seed<S>.h5 with more than one seed.
std::string checkpoint_path(const std::string& dir, int64_t seeds, uint64_t seed);

/// "seed S: already stopped after task T of N ...".
void print_already_stopped(uint64_t seed, int64_t learned, int64_t num_tasks, int64_t stop_after);

/// --resume with a --stop-after-task that every seed's checkpoint has already reached: said
/// (true) from the checkpoints alone, before minutes of reading data for nothing to learn.
bool already_stopped(const std::string& dir, int64_t seeds, uint64_t seed, int64_t stop_after);

/// `path` made absolute against the working directory (not normalised).
std::string absolute_path(const std::string& path);

/// The options given on the command line, as a JSON array of [name, values...], which a
/// checkpoint records for resuming; the data folder always, absolute.
std::string given_options(const CLI::App& cli, const std::string& data_dir);

/// Refuses (kprior::FileError) to resume the checkpoint `ckpt` on other data than it was
/// trained on: `config` is this run's configuration, with its data fingerprint.
void require_same_data(const std::string& ckpt, const std::string& saved_config, const nlohmann::json& config);

/// --resume DIR: the command line `args` rewritten to the run's saved options, plus the
/// overridable ones given now (--threads, --data-dir, --stop-after-task, --jitter); any other
/// option is a kprior::UsageError.
std::vector<std::string> resumed_arguments(const std::vector<std::string>& args, const std::string& dir);

}  // namespace kprior_run
