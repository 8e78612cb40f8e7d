#pragma once
// mpe-influence's data and models: Fashion-MNIST as the publication reads it, and its two
// networks (Nickl et al., NeurIPS 2023, §4 and App. D).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kprior/data/dataset.h"
#include "kprior/nn/layer_tape.h"

namespace mpe_influence {

/// Fashion-MNIST's class names, by label.
extern const std::vector<std::string> kFashionNames;

/// DIR/fashion-mnist when it exists, else DIR (the IDX files themselves).
std::string fashion_dir(const std::string& dir);

/// Standardises both sets' pixels as the publication does ("standardized"), or leaves them
/// in [0, 1] ("unit").
void scale_inputs(kprior::data::Dataset& train, kprior::data::Dataset& test, const std::string& inputs);

/// Refuses removals the training set cannot give (a class it lacks, single removals from
/// fewer than two examples) or, with --retrain, leaves nothing to retrain on (`listed`: the
/// number of --remove-indices examples).
void require_removable(const kprior::data::Dataset& train, const std::vector<int64_t>& classes, int64_t listed,
                       int64_t per_example, bool retrain);

/// --model mlp or lenet5.
std::shared_ptr<kprior::nn::TapedModule> make_model(const std::string& name);

/// The architecture name a model file records for --model, and back: the --model that loads
/// a file's architecture (or why none does).
std::string architecture_name(const std::string& model);
std::string model_option_of(const std::string& architecture);

/// The --model of a model file's architecture (mlp where it names none mpe-influence builds:
/// loading it then says what it holds).
std::string model_of_file(const std::string& path);

}  // namespace mpe_influence
