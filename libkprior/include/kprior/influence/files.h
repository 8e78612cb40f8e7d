#pragma once
// The files of mpe-influence, in the kprior checkpoint container (docs/checkpoint-format.md;
// HDF5 that h5py reads once it skips the 512-byte user block, which it does by itself):
// - the model file it writes after training and reads back with --checkpoint: @content
//   "mpe-influence model", the module under model/ and model_buffers/, its architecture and
//   prior precision δ under model@..., the diagonal posterior under posterior/, and what it
//   was trained on under training@... (size, labels' fingerprint, the settings as JSON);
// - the sensitivities file: @content "mpe-influence sensitivities", sensitivities/{logits,
//   variance, deviation, nll, loo_nll, labels} and sensitivities@form.
#include <torch/nn/module.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "kprior/influence/sensitivity.h"
#include "kprior/posterior/diagonal_gaussian.h"

namespace kprior::influence {

inline constexpr const char* kModelFileContent = "mpe-influence model";

/// What a model was trained on, so that a file is not silently applied to other data: the
/// posterior, and every estimate from it, belong to one training set.
struct TrainingRecord {
  int64_t examples = 0;         ///< training set size
  uint64_t labels_fingerprint = 0;  ///< labels_fingerprint() of its labels, in order
  std::string settings_json;    ///< how it was trained (optimizer, epochs, ...), for the record
};

/// A fingerprint (FNV-1a) of a label sequence: equal for the same labels in the same order,
/// and in practice different for another subset or another data set.
uint64_t labels_fingerprint(const torch::Tensor& labels);

void save_model_file(const std::string& path, const torch::nn::Module& model,
                     const std::string& architecture, double prior_precision,
                     const posterior::DiagonalGaussian& posterior, const TrainingRecord& training);

struct LoadedModel {
  posterior::DiagonalGaussian posterior;
  double prior_precision = 0;
  std::optional<TrainingRecord> training;  ///< absent in files of kprior 0.1.0 before it was written
};

/// Reads a model file into `model` (built as `architecture`). Throws kprior::FileError for a
/// file that is not such a model file, lacks a posterior, has a damaged training record or
/// whose tensors do not fit, and kprior::UsageError when it holds another architecture, with
/// `advice(stored architecture)` (if given) saying how to load that one.
LoadedModel load_model_file(const std::string& path, torch::nn::Module& model, const std::string& architecture,
                            const std::function<std::string(const std::string&)>& advice = {});

/// Throws kprior::FileError (naming `path`) unless `loaded` was trained on exactly the
/// examples whose labels are `labels`; files without a record pass.
void require_same_training_set(const std::string& path, const LoadedModel& loaded, const torch::Tensor& labels);

/// The input scaling a model file's training settings (JSON) record: "standardized" or
/// "unit"; `recorded` is false for files that do not say, whose models were trained on "unit"
/// inputs (kprior before mpe-influence standardised). Throws kprior::FileError naming `path`
/// for settings that are not a JSON object or another scaling.
struct InputScaling {
  std::string name;
  bool recorded = false;
};
InputScaling recorded_input_scaling(const std::string& path, const std::string& settings_json);

/// Writes every training example's sensitivities with their labels.
void save_sensitivities(const std::string& path, const Sensitivities& s, const torch::Tensor& labels,
                        Form form);

}  // namespace kprior::influence
