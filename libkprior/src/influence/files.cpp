#include "kprior/influence/files.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "kprior/checkpoint/file.h"
#include "kprior/checkpoint/objects.h"
#include "kprior/core/error.h"
#include "kprior/core/fingerprint.h"
#include "kprior/core/parse.h"

namespace kprior::influence {

uint64_t labels_fingerprint(const torch::Tensor& labels) { return Fingerprint().add_integers(labels).value(); }

void save_model_file(const std::string& path, const torch::nn::Module& model,
                     const std::string& architecture, double prior_precision,
                     const posterior::DiagonalGaussian& posterior, const TrainingRecord& training) {
  checkpoint::Tree tree;
  tree.put_attr("@content", std::string(kModelFileContent));
  tree.put_attr("model@architecture", architecture);
  tree.put_attr("model@prior_precision", prior_precision);
  tree.put_attr("training@examples", training.examples);
  // As text: HDF5 attributes here are signed, and a fingerprint uses all 64 bits.
  tree.put_attr("training@labels_fingerprint", std::to_string(training.labels_fingerprint));
  tree.put_attr("training@settings", training.settings_json);
  checkpoint::put_module(tree, model);
  checkpoint::put_posterior(tree, "posterior", posterior);
  checkpoint::write(tree, path);
}

LoadedModel load_model_file(const std::string& path, torch::nn::Module& model, const std::string& architecture,
                            const std::function<std::string(const std::string&)>& advice) {
  const auto tree = checkpoint::read(path);
  const auto content = tree.has_attr("@content") ? tree.text("@content") : std::string();
  if (content == "mpe-influence sensitivities") {
    throw FileError(path, "is mpe-influence's sensitivities file (influence.h5), not its model file: give the "
                          "model.h5 beside it");
  }
  if (content != kModelFileContent) {
    throw FileError(path, "not a model file of mpe-influence (it writes one, model.h5, to --out; "
                          "kprior-run checkpoints hold a task sequence's heads, not a 10-class model)");
  }
  const auto& stored = tree.text("model@architecture");
  if (stored != architecture) {
    throw UsageError(path + " holds a " + stored + " model, not a " + architecture + " one" +
                     (advice ? ": " + advice(stored) : std::string()));
  }
  if (!tree.has_attr("posterior@source")) throw FileError(path, "the checkpoint has no posterior");
  checkpoint::get_module(tree, model);
  LoadedModel loaded{checkpoint::get_posterior(tree, "posterior"), tree.real("model@prior_precision"), std::nullopt};
  if (tree.has_attr("training@examples")) {
    const auto fingerprint = parse_integer<uint64_t>(tree.text("training@labels_fingerprint"));
    if (!fingerprint) throw FileError(path, "'training@labels_fingerprint' is not a number");
    loaded.training = TrainingRecord{tree.integer("training@examples"), *fingerprint, tree.text("training@settings")};
  }
  return loaded;
}

InputScaling recorded_input_scaling(const std::string& path, const std::string& settings_json) {
  const auto settings = nlohmann::json::parse(settings_json, nullptr, false);
  if (settings.is_discarded() || !settings.is_object()) {
    throw FileError(path, "its training settings are not JSON");
  }
  if (!settings.contains("inputs")) return {"unit", false};
  const auto& v = settings["inputs"];
  const auto name = v.is_string() ? v.get<std::string>() : v.dump();
  if (name != "standardized" && name != "unit") {
    throw FileError(path, "its training settings name inputs " + name + ", not standardized or unit");
  }
  return {name, true};
}

void require_same_training_set(const std::string& path, const LoadedModel& loaded, const torch::Tensor& labels) {
  if (!loaded.training) return;
  const auto& t = *loaded.training;
  if (t.examples != labels.size(0)) {
    throw FileError(path, "the model was trained on " + std::to_string(t.examples) + " examples, not the " +
                              std::to_string(labels.size(0)) + " given: use the same --data-dir and --train-size");
  }
  if (t.labels_fingerprint != labels_fingerprint(labels)) {
    throw FileError(path, "the model was trained on other examples (their labels differ): use the same "
                          "--data-dir and --train-size");
  }
}

void save_sensitivities(const std::string& path, const Sensitivities& s, const torch::Tensor& labels,
                        Form form) {
  checkpoint::Tree tree;
  tree.put_attr("@content", std::string("mpe-influence sensitivities"));
  tree.put_attr("sensitivities@form", to_string(form));
  tree.put("sensitivities/logits", s.logits);
  tree.put("sensitivities/variance", s.variance);
  tree.put("sensitivities/residual", s.residual);
  tree.put("sensitivities/deviation", s.deviation);
  // GLM form: which examples have no leave-one-out estimate under this posterior (1 = none).
  if (s.glm_invalid.defined()) tree.put("sensitivities/glm_invalid", s.glm_invalid.to(torch::kUInt8));
  tree.put("sensitivities/nll", s.nll);
  tree.put("sensitivities/loo_nll", s.loo_nll);
  tree.put("sensitivities/labels", labels);
  checkpoint::write(tree, path);
}

}  // namespace kprior::influence
