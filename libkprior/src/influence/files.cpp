#include "kprior/influence/files.h"

#include <torch/torch.h>

#include "kprior/checkpoint/file.h"
#include "kprior/checkpoint/objects.h"
#include "kprior/core/error.h"

namespace kprior::influence {

void save_model_file(const std::string& path, const torch::nn::Module& model,
                     const std::string& architecture, double prior_precision,
                     const posterior::DiagonalGaussian& posterior) {
  checkpoint::Tree tree;
  tree.put_attr("@content", std::string(kModelFileContent));
  tree.put_attr("model@architecture", architecture);
  tree.put_attr("model@prior_precision", prior_precision);
  checkpoint::put_module(tree, model);
  checkpoint::put_posterior(tree, "posterior", posterior);
  checkpoint::write(tree, path);
}

LoadedModel load_model_file(const std::string& path, torch::nn::Module& model,
                            const std::string& architecture) {
  const auto tree = checkpoint::read(path);
  if (!tree.has_attr("@content") || tree.text("@content") != kModelFileContent) {
    throw FileError(path, "not a model file of mpe-influence (it writes one, model.h5, to --out; "
                          "kprior-run checkpoints hold a task sequence's heads, not a 10-class model)");
  }
  const auto& stored = tree.text("model@architecture");
  if (stored != architecture) {
    throw UsageError(path + " holds a " + stored + " model; pass --model " + stored);
  }
  if (!tree.has_attr("posterior@source")) throw FileError(path, "the checkpoint has no posterior");
  checkpoint::get_module(tree, model);
  return {checkpoint::get_posterior(tree, "posterior"), tree.real("model@prior_precision")};
}

void save_sensitivities(const std::string& path, const Sensitivities& s, const torch::Tensor& labels,
                        Form form) {
  checkpoint::Tree tree;
  tree.put_attr("@content", std::string("mpe-influence sensitivities"));
  tree.put_attr("sensitivities@form", to_string(form));
  tree.put("sensitivities/logits", s.logits);
  tree.put("sensitivities/variance", s.variance);
  tree.put("sensitivities/deviation", s.deviation);
  tree.put("sensitivities/nll", s.nll);
  tree.put("sensitivities/loo_nll", s.loo_nll);
  tree.put("sensitivities/labels", labels);
  checkpoint::write(tree, path);
}

}  // namespace kprior::influence
