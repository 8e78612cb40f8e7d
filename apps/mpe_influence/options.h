#pragma once
// mpe-influence's command line: its options, the checks made before any data is read, the
// training and retraining settings they give, and what a loaded model file decides instead.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "kprior/influence/files.h"
#include "kprior/influence/retrain.h"
#include "kprior/train/map_fit.h"

namespace mpe_influence {

struct Options {
  std::string data_dir = "data", out_dir = "out/mpe-influence", model = "mlp", optimizer = "adam";
  std::string checkpoint, remove_class, remove_indices, form = "diagonal", protocols = "published,converge";
  std::string per_example_optimizer = "sgd", posterior = "laplace", inputs = "standardized";
  int64_t epochs = 0, batch_size = 256, train_size = 0, top_k = 0, per_example = 0;
  int64_t retrain_epochs = 0, converge_epochs = 30, per_example_steps = 100;
  double lr = 0, final_lr = 0, prior_precision = 100, converge_lr = 1e-3, per_example_lr = 0.01;
  uint64_t seed = 0;
  int threads = 0;
  bool retrain = false, set_form = false, plot = false;
  int64_t recorded_batch_size = 0;  ///< with --checkpoint: the batch size the file's model trained with
};

/// Declares mpe-influence's options on `cli`, bound to `o`.
void add_options(CLI::App& cli, Options& o);

/// Refuses (kprior::UsageError, kprior::FileError) options that contradict each other or
/// cannot act, before any data is read.
void check_options(const CLI::App& cli, const Options& o);

/// --remove-class: a class 0..9, "all", or none ("").
std::vector<int64_t> classes_to_remove(const std::string& text);

/// --remove-indices FILE: the training indices it lists (whitespace or commas), sorted and
/// without repeats; kprior::FileError for anything else or an index outside 0..n−1.
std::vector<int64_t> read_indices(const std::string& path, int64_t n);

/// The training run's settings: the optimizer's (SGD: the publication's) learning rate with a
/// cosine decay, the model's default epochs.
kprior::train::FitOptions training_options(const Options& o);

/// How a model was trained, as model.h5 records it and summary.json reports it.
nlohmann::json training_settings(const Options& o, const kprior::train::FitOptions& fit, const std::string& posterior);

/// A retraining protocol of --retrain, with its control run and one run per removed class.
struct ProtocolRun {
  std::string name;
  kprior::train::FitOptions fit;
  kprior::influence::RetrainOutcome control;
  std::vector<kprior::influence::RetrainOutcome> per_class;
};

/// --protocols: published (SGD, small cosine lr, as Nickl et al.) and/or converge.
std::vector<ProtocolRun> retraining_protocols(const Options& o);

/// Refuses a protocol's options given without that protocol.
void require_protocol_options(const CLI::App& cli, const std::vector<ProtocolRun>& runs);

/// With a loaded model that records its batch size, --batch-size sets only the converge
/// protocol's: refused without one.
void require_batch_size_acts(const CLI::App& cli, const Options& o, const std::vector<ProtocolRun>& runs);

/// The input scaling a model file's model was trained with (older files: unit, with a note);
/// a different --inputs is refused.
std::string inputs_of_file(const std::optional<kprior::influence::TrainingRecord>& training, const CLI::App& cli,
                           const Options& o);

/// A loaded model's retraining uses the optimizer and batch size it was trained with, unless
/// --optimizer or --batch-size say otherwise.
void adopt_file_training(const nlohmann::json& training, const CLI::App& cli, Options& o);

/// Creates --out and removes an earlier run's files there (model.h5 stays when it is the
/// --checkpoint).
void prepare_output_dir(const Options& o);

}  // namespace mpe_influence
