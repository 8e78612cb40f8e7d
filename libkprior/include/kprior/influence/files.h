#pragma once
// The files of mpe-influence, in the kprior checkpoint container (docs/checkpoint-format.md;
// HDF5 that h5py reads once it skips the 512-byte user block, which it does by itself):
// - the model file it writes after training and reads back with --checkpoint: @content
//   "mpe-influence model", the module under model/ and model_buffers/, its architecture and
//   prior precision δ under model@..., the diagonal posterior under posterior/;
// - the sensitivities file: @content "mpe-influence sensitivities", sensitivities/{logits,
//   variance, deviation, nll, loo_nll, labels} and sensitivities@form.
#include <torch/nn/module.h>

#include <string>

#include "kprior/influence/sensitivity.h"
#include "kprior/posterior/diagonal_gaussian.h"

namespace kprior::influence {

inline constexpr const char* kModelFileContent = "mpe-influence model";

void save_model_file(const std::string& path, const torch::nn::Module& model,
                     const std::string& architecture, double prior_precision,
                     const posterior::DiagonalGaussian& posterior);

struct LoadedModel {
  posterior::DiagonalGaussian posterior;
  double prior_precision = 0;
};

/// Reads a model file into `model` (built as `architecture`). Throws kprior::FileError for a
/// file that is not such a model file, lacks a posterior or whose tensors do not fit, and
/// kprior::UsageError when it holds another architecture.
LoadedModel load_model_file(const std::string& path, torch::nn::Module& model,
                            const std::string& architecture);

/// Writes every training example's sensitivities with their labels.
void save_sensitivities(const std::string& path, const Sensitivities& s, const torch::Tensor& labels,
                        Form form);

}  // namespace kprior::influence
