// mpe-influence: "what if these training examples had not been there?" answered from the
// posterior with the memory-perturbation equation (Nickl et al., NeurIPS 2023; METHODS.md §5),
// optionally checked against brute-force retraining. The logic lives in kprior::influence;
// this folder reads options (options.*), the data and models (fashion.*), calls it stage by
// stage (here), prints and writes the results.
#include <fmt/core.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "app_main.h"
#include "fashion.h"
#include "options.h"
#include "plot.h"
#include "kprior/core/allocator.h"
#include "kprior/core/parse.h"
#include "kprior/core/random.h"
#include "kprior/core/threads.h"
#include "kprior/core/version.h"
#include "kprior/data/channel_stats.h"
#include "kprior/data/dataset.h"
#include "kprior/image/grid.h"
#include "kprior/image/png.h"
#include "kprior/influence/class_removal.h"
#include "kprior/influence/files.h"
#include "kprior/influence/retrain.h"
#include "kprior/influence/sensitivity.h"
#include "kprior/influence/set_removal.h"
#include "kprior/influence/single_removal.h"
#include "kprior/metrics/correlation.h"
#include "kprior/nn/lenet5.h"
#include "kprior/nn/mlp.h"
#include "kprior/train/map_fit.h"


namespace mpe_influence {
namespace {

using nlohmann::json;
using namespace kprior;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Runs `fit`; a fit that fails (diverges) is reported with the run it was: training, or
// which retraining.
template <typename F>
auto in_run(const std::string& run, F&& fit) {
  try {
    return fit();
  } catch (const UsageError&) {
    throw;
  } catch (const FileError&) {
    throw;
  } catch (const Error& e) {
    throw Error(run + ": " + e.what());
  }
}

// A number for the terminal; "n/a" where summary.json has null (a correlation without spread).
std::string fixed(double v, int digits = 4) { return std::isfinite(v) ? fmt::format("{:.{}f}", v, digits) : "n/a"; }

json correlations(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() < 2) return nullptr;
  return {{"pearson", metrics::pearson(a, b)}, {"spearman", metrics::spearman(a, b)}};
}

// What the stages of one run share.
struct Run {
  Options o;
  std::vector<int64_t> remove;   // classes to remove
  std::vector<int64_t> indices;  // listed examples to remove
  std::vector<int64_t> cols = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  data::Dataset train_set, test_set;
  std::shared_ptr<nn::TapedModule> model;
  std::optional<posterior::DiagonalGaussian> q;
  std::vector<ProtocolRun> protocols;
  json summary;
};

// The Fashion-MNIST images (the first --train-size for training) and the listed removals.
void load_data(Run& r) {
  const auto& o = r.o;
  auto& train_set = r.train_set;
  const auto dir = fashion_dir(o.data_dir);
  train_set = data::load_mnist_dir(dir, data::Split::Train);
  r.test_set = data::load_mnist_dir(dir, data::Split::Test);
  if (o.train_size > train_set.size()) {
    throw UsageError("--train-size " + std::to_string(o.train_size) + " is more than the " +
                     std::to_string(train_set.size()) + " training images in " + dir);
  }
  if (o.train_size > 0 && o.train_size < train_set.size()) {
    train_set = train_set.subset(torch::arange(o.train_size));
  }
  r.indices = o.remove_indices.empty() ? std::vector<int64_t>{} : read_indices(o.remove_indices, train_set.size());
  require_removable(train_set, r.remove, static_cast<int64_t>(r.indices.size()), o.per_example, o.retrain);
}

// 1. The trained model and its posterior: from --checkpoint, or trained here (and saved).
// Returns the model's mean training NLL.
double prepare_model(Run& r, const CLI::App& cli) {
  auto& o = r.o;
  auto& train_set = r.train_set;
  auto& test_set = r.test_set;
  auto& model = *r.model;
  auto& q = r.q;
  auto& summary = r.summary;
  if (!o.checkpoint.empty()) {
    auto loaded = influence::load_model_file(o.checkpoint, model, architecture_name(o.model), model_option_of);
    influence::require_same_training_set(o.checkpoint, loaded, train_set.targets);
    q = loaded.posterior;
    // How the file's model was trained (files written before the record: unknown).
    summary["training"] = loaded.training ? json::parse(loaded.training->settings_json, nullptr, false) : json(nullptr);
    if (summary["training"].is_discarded()) throw FileError(o.checkpoint, "its training settings are not JSON");
    o.inputs = inputs_of_file(loaded.training, cli, o);
    if (summary["training"].is_object()) {
      summary["training"]["inputs"] = o.inputs;  // "unit" for files that do not record it
      adopt_file_training(summary["training"], cli, o);
    }
    scale_inputs(train_set, test_set, o.inputs);
    prepare_output_dir(o);
    o.prior_precision = loaded.prior_precision;
    summary["prior_precision"] = o.prior_precision;  // the file's δ
    if (o.retrain) r.protocols = retraining_protocols(o);  // retrain towards the file's δ
    require_batch_size_acts(cli, o, r.protocols);
    summary["checkpoint"] = o.checkpoint;
    model.eval();
    fmt::print("loaded {} and its posterior ({}) from {}\n", o.model, q->source(), o.checkpoint);
  } else {
    scale_inputs(train_set, test_set, o.inputs);
    prepare_output_dir(o);
    const auto fit = training_options(o);
    fmt::print("training {} on {} Fashion-MNIST images ({} inputs): {} epochs, {} lr {}, δ = {}\n", o.model,
               train_set.size(), o.inputs, fit.epochs(), o.optimizer, fit.lr(), o.prior_precision);
    const auto report = in_run("training", [&] {
      return train::fit_map(model, train_set, r.cols, fit, [&](int64_t e, double loss) {
        fmt::print("  epoch {}/{}  loss {:.4f}\n", e + 1, fit.epochs(), loss);
        std::fflush(stdout);
      });
    });
    const auto t0 = Clock::now();
    if (report.ivon_posterior) {
      q = *report.ivon_posterior;
    } else if (o.posterior == "adam") {
      q = *report.adam_posterior;
    } else {
      q = train::laplace_posterior(model, train_set, r.cols, o.prior_precision);
    }
    summary["train_seconds"] = report.seconds;
    summary["posterior_seconds"] = since(t0);
    summary["training"] = training_settings(o, fit, q->source());
    influence::save_model_file(o.out_dir + "/model.h5", model, architecture_name(o.model), o.prior_precision, *q,
                               {train_set.size(), influence::labels_fingerprint(train_set.targets),
                                summary["training"].dump()});
  }
  summary["posterior"] = q->source();
  summary["inputs"] = o.inputs;
  const auto test_q = train::evaluate_fit(model, test_set, r.cols);
  const auto train_q = train::evaluate_fit(model, train_set, r.cols);
  summary["test"] = {{"nll", test_q.nll}, {"accuracy", test_q.accuracy}};
  summary["train"] = {{"nll", train_q.nll}, {"accuracy", train_q.accuracy}};
  fmt::print("model: train NLL {:.4f} acc {:.4f}; test NLL {:.4f} acc {:.4f}\n", train_q.nll,
             train_q.accuracy, test_q.nll, test_q.accuracy);
  return train_q.nll;
}

// 2. Every training example's sensitivity: one streamed pass, saved to influence.h5.
influence::Sensitivities compute_sensitivities(Run& r, influence::Form form, double train_nll) {
  const auto& train_set = r.train_set;
  const auto t0 = Clock::now();
  const auto sens = influence::sensitivities(*r.model, train_set.inputs, train_set.targets, r.cols, r.q->variance(), form);
  const double estimate_seconds = since(t0);
  r.summary["estimate_seconds"] = estimate_seconds;
  r.summary["loo_nll_estimate"] = influence::loo_nll_estimate(sens);
  if (const auto none = influence::without_estimate(sens); none > 0) {
    r.summary["examples_without_estimate"] = none;  // left out of every mean
    fmt::print(stderr, "warning: {} examples have no estimate (a singular I − ΛV in the GLM form); every mean "
                       "leaves them out\n", none);
  }
  if (form == influence::Form::GLM) {
    const auto invalid = sens.glm_invalid.sum().item<int64_t>();
    r.summary["glm_invalid_examples"] = invalid;
    if (invalid > 0) {
      fmt::print(stderr,
                 "warning: for {} of {} examples Λ·V has an eigenvalue >= 1 under this posterior (the downdated "
                 "precision is not positive definite): their GLM-form estimates are not leave-one-out estimates. "
                 "Use --form diagonal or full.\n",
                 invalid, train_set.size());
    }
  }
  fmt::print("sensitivities of {} examples in {:.2f} s; estimated leave-one-out NLL {:.4f} (train NLL {:.4f})\n",
             train_set.size(), estimate_seconds, influence::loo_nll_estimate(sens), train_nll);
  influence::save_sensitivities(r.o.out_dir + "/influence.h5", sens, train_set.targets, form);
  return sens;
}

// 3. Class removal: the published per-example estimate and the trivial predictor, per class.
std::vector<influence::ClassEstimate> chosen_classes(const Run& r, const influence::Sensitivities& sens) {
  const auto estimates = influence::class_estimates(sens, r.train_set.targets, 10);
  std::vector<influence::ClassEstimate> chosen;
  for (const auto c : r.remove) {
    for (const auto& e : estimates) if (e.label == c) chosen.push_back(e);
  }
  if (chosen.size() != r.remove.size()) throw UsageError("--remove-class: the class has no training examples");
  return chosen;
}

// The set form's test NLL and accuracy after removing each chosen class (--set-form).
std::vector<influence::SetEffect> set_form_effects(Run& r, const std::vector<influence::ClassEstimate>& chosen) {
  const auto t0 = Clock::now();
  std::vector<influence::SetEffect> effects;
  for (const auto& e : chosen) {
    effects.push_back(influence::estimate_set_effect(*r.model, r.train_set, r.test_set, r.cols, *r.q,
                                                     influence::indices_of_class(r.train_set.targets, e.label),
                                                     r.o.prior_precision));
  }
  r.summary["set_form_seconds"] = since(t0);
  return effects;
}

// 4. Per protocol: the control run on all data, then retraining without each chosen class.
void retrain_without_classes(Run& r, const std::vector<influence::ClassEstimate>& chosen,
                             const std::vector<torch::Tensor>& weights) {
  for (auto& p : r.protocols) {
    fmt::print("retraining ({}: {} epochs, lr {:g} → {:g}), control run on all data...\n", p.name,
               p.fit.epochs(), p.fit.lr(), p.fit.final_lr() < 0 ? p.fit.lr() : p.fit.final_lr());
    std::fflush(stdout);
    p.control = in_run("the control run of the " + p.name + " protocol", [&] {
      return influence::retrain_without(*r.model, weights, r.train_set, r.test_set, r.cols, {}, p.fit);
    });
    for (size_t k = 0; k < chosen.size(); ++k) {
      fmt::print("  without class {} ({}/{}) ...", chosen[k].label, k + 1, chosen.size());
      std::fflush(stdout);
      const auto removed = influence::indices_of_class(r.train_set.targets, chosen[k].label);
      const auto& run = p.per_class.emplace_back(
          in_run(fmt::format("retraining without class {} ({} protocol)", chosen[k].label, p.name), [&] {
            return influence::retrain_without(*r.model, weights, r.train_set, r.test_set, r.cols, removed, p.fit);
          }));
      fmt::print(" test NLL {:.4f} acc {:.4f} ({:.1f} s)\n", run.test_nll, run.test_accuracy, run.seconds);
    }
  }
}

// The class-removal table (class_removal.csv, the terminal, summary.json's class_removal).
void write_class_table(Run& r, const std::vector<influence::ClassEstimate>& chosen,
                       const std::vector<influence::SetEffect>& set_effects) {
  const bool set_form = !set_effects.empty();
  std::ofstream csv(r.o.out_dir + "/class_removal.csv");
  csv << "class,name,removed,train_nll,estimated_nll";
  if (set_form) csv << ",set_removed_nll,set_test_nll,set_test_accuracy";
  for (const auto& p : r.protocols) csv << fmt::format(",{0}_test_nll,{0}_test_accuracy,{0}_accuracy_drop,{0}_removed_nll", p.name);
  csv << "\n";
  fmt::print("\n{:>5} {:>9} {:>7} {:>10} {:>10}", "class", "name", "removed", "train NLL", "MPE NLL");
  if (set_form) fmt::print(" {:>12}", "set test NLL");
  for (const auto& p : r.protocols) fmt::print(" {:>12} {:>9}", p.name + " NLL", "acc drop");
  fmt::print("\n");
  json classes = json::array();
  for (size_t k = 0; k < chosen.size(); ++k) {
    const auto& e = chosen[k];
    const auto& name = kFashionNames[static_cast<size_t>(e.label)];
    csv << fmt::format("{},{},{},{:.9g},{:.9g}", e.label, name, e.removed, e.train_nll, e.estimated_nll);
    json row = {{"class", e.label}, {"name", name}, {"removed", e.removed},
                {"train_nll", e.train_nll}, {"estimated_nll", e.estimated_nll}};
    if (e.without_estimate > 0) row["without_estimate"] = e.without_estimate;
    if (set_form) {
      const auto& s = set_effects[k];
      csv << fmt::format(",{:.9g},{:.9g},{:.9g}", s.removed_nll, s.test_nll, s.test_accuracy);
      row["set_form"] = {{"removed_nll", s.removed_nll}, {"test_nll", s.test_nll},
                         {"test_accuracy", s.test_accuracy}, {"clamped", s.clamped}};
    }
    fmt::print("{:>5} {:>9} {:>7} {:>10} {:>10}", e.label, name, e.removed, fixed(e.train_nll), fixed(e.estimated_nll));
    if (set_form) fmt::print(" {:>12}", fixed(set_effects[k].test_nll));
    for (const auto& p : r.protocols) {
      const auto& run = p.per_class[k];
      const double drop = p.control.test_accuracy - run.test_accuracy;
      csv << fmt::format(",{:.9g},{:.9g},{:.9g},{:.9g}", run.test_nll, run.test_accuracy, drop, run.removed_nll);
      row[p.name] = {{"test_nll", run.test_nll}, {"test_accuracy", run.test_accuracy},
                     {"accuracy_drop", drop}, {"removed_nll", run.removed_nll}, {"seconds", run.seconds}};
      fmt::print(" {:>12} {:>9}", fixed(run.test_nll), fixed(drop));
    }
    fmt::print("\n");
    csv << "\n";
    classes.push_back(row);
  }
  r.summary["class_removal"] = classes;
}

// Rank agreement across the removed classes, per protocol: the estimate, the trivial
// predictor and the set form against retraining (summary.json's agreement).
void report_agreement(Run& r, const std::vector<influence::ClassEstimate>& chosen,
                      const std::vector<influence::SetEffect>& set_effects) {
  json agreement;
  std::vector<double> est, trivial, set_test;
  for (const auto& e : chosen) {
    est.push_back(e.estimated_nll);
    trivial.push_back(e.train_nll);
  }
  for (const auto& s : set_effects) set_test.push_back(s.test_nll);
  for (const auto& p : r.protocols) {
    std::vector<double> nll, drop, removed;
    for (const auto& run : p.per_class) {
      nll.push_back(run.test_nll);
      drop.push_back(p.control.test_accuracy - run.test_accuracy);
      removed.push_back(run.removed_nll);
    }
    agreement[p.name] = {{"estimate_vs_test_nll", correlations(est, nll)},
                         {"estimate_vs_accuracy_drop", correlations(est, drop)},
                         {"estimate_vs_removed_nll", correlations(est, removed)},
                         {"trivial_vs_test_nll", correlations(trivial, nll)},
                         {"trivial_vs_accuracy_drop", correlations(trivial, drop)},
                         {"trivial_vs_removed_nll", correlations(trivial, removed)},
                         {"set_form_vs_test_nll", set_test.empty() ? json(nullptr) : correlations(set_test, nll)},
                         {"control", {{"test_nll", p.control.test_nll}, {"test_accuracy", p.control.test_accuracy},
                                      {"seconds", p.control.seconds}}},
                         {"epochs", p.fit.epochs()}, {"lr", p.fit.lr()},
                         {"optimizer", train::to_string(p.fit.optimizer())}, {"batch_size", p.fit.batch_size()},
                         {"prior_precision", p.fit.prior_precision()},
                         {"final_lr", p.fit.final_lr() < 0 ? p.fit.lr() : p.fit.final_lr()}};  // < 0: constant
    if (est.size() >= 2) {
      fmt::print("{}: estimate vs retrained test NLL Pearson {} Spearman {}; vs accuracy drop Spearman {}; "
                 "trivial predictor vs test NLL Spearman {}\n",
                 p.name, fixed(metrics::pearson(est, nll), 3), fixed(metrics::spearman(est, nll), 3),
                 fixed(metrics::spearman(est, drop), 3), fixed(metrics::spearman(trivial, nll), 3));
    }
  }
  r.summary["agreement"] = agreement;
}

// 5. A list of examples: the estimate for the set, and retraining without it.
void remove_listed(Run& r, const influence::Sensitivities& sens, const std::vector<torch::Tensor>& weights) {
  const auto& indices = r.indices;
  const auto idx = torch::tensor(indices);
  const auto loo = sens.loo_nll.index_select(0, idx).to(torch::kFloat64);
  const auto estimated = loo.masked_select(torch::isfinite(loo));  // as loo_nll_estimate
  json set = {{"removed", indices.size()},
              {"estimated_nll", estimated.numel() > 0 ? estimated.mean().item<double>() : std::nan("")},
              {"train_nll", sens.nll.index_select(0, idx).mean().item<double>()}};
  const auto eff = influence::estimate_set_effect(*r.model, r.train_set, r.test_set, r.cols, *r.q, indices,
                                                  r.o.prior_precision);
  set["set_form"] = {{"removed_nll", eff.removed_nll}, {"test_nll", eff.test_nll}, {"test_accuracy", eff.test_accuracy},
                     {"clamped", eff.clamped}};
  fmt::print("removing {} listed examples: estimated NLL on them {:.4f} (now {:.4f}); set form: test NLL {:.4f}, acc {:.4f}\n",
             indices.size(), set["estimated_nll"].get<double>(), set["train_nll"].get<double>(), eff.test_nll, eff.test_accuracy);
  for (const auto& p : r.protocols) {
    const auto run = in_run("retraining without the listed examples (" + p.name + " protocol)", [&] {
      return influence::retrain_without(*r.model, weights, r.train_set, r.test_set, r.cols, indices, p.fit);
    });
    set[p.name] = {{"removed_nll", run.removed_nll}, {"test_nll", run.test_nll}, {"test_accuracy", run.test_accuracy},
                   {"accuracy_drop", p.control.test_accuracy - run.test_accuracy},
                   {"control_test_nll", p.control.test_nll}, {"control_test_accuracy", p.control.test_accuracy}};
    fmt::print("  retrained ({}): NLL on them {:.4f}, test NLL {:.4f}, acc {:.4f} (control {:.4f}, {:.4f})\n", p.name,
               run.removed_nll, run.test_nll, run.test_accuracy, p.control.test_nll, p.control.test_accuracy);
  }
  r.summary["remove_indices"] = set;
}

// 6. Single examples: estimated vs retrained change of the softmax output (per_example.csv).
void remove_single_examples(Run& r, const influence::Sensitivities& sens, const std::vector<torch::Tensor>& weights) {
  const auto& o = r.o;
  auto fit = training_options(o);
  fit.optimizer(train::parse_optimizer(o.per_example_optimizer))
      .lr(o.per_example_lr)
      .final_lr(-1)
      .batch_size(r.train_set.size())
      .epochs(o.per_example_steps);
  const auto order = random_permutation(r.train_set.size(), mix_seed(o.seed, 0x5e1f));
  const auto n = std::min<int64_t>(o.per_example, r.train_set.size());
  fmt::print("single-example removals: {} examples, {} full-batch {} steps each at lr {:g}\n", n,
             o.per_example_steps, o.per_example_optimizer, o.per_example_lr);
  const auto rows = in_run("single-example retraining (--per-example-lr)", [&] {
    return influence::compare_single_removals(
        *r.model, weights, r.train_set, r.cols, sens, {order.begin(), order.begin() + n}, fit,
        [](int64_t done, int64_t total) {
          if (done % 10 == 0 || done == total) {
            fmt::print("  {}/{} removed and retrained\n", done, total);
            std::fflush(stdout);
          }
        });
  });
  std::ofstream csv(o.out_dir + "/per_example.csv");
  csv << "index,label,estimated_change_true_class,true_change_true_class,estimated_l1,true_l1,"
         "estimated_l1_linear\n";
  std::vector<double> est_all, true_all, est_y, true_y, est_l1, est_l1_lin, true_l1;
  for (const auto& row : rows) {
    for (int64_t c = 0; c < row.estimated.size(0); ++c) {
      est_all.push_back(row.estimated[c].item<double>());
      true_all.push_back(row.retrained[c].item<double>());
    }
    est_y.push_back(row.estimated[row.label].item<double>());
    true_y.push_back(row.retrained[row.label].item<double>());
    est_l1.push_back(row.estimated.abs().sum().item<double>());
    true_l1.push_back(row.retrained.abs().sum().item<double>());
    est_l1_lin.push_back(row.estimated_l1_linear);
    csv << fmt::format("{},{},{:.8g},{:.8g},{:.8g},{:.8g},{:.8g}\n", row.index, row.label, est_y.back(),
                       true_y.back(), est_l1.back(), true_l1.back(), est_l1_lin.back());
  }
  r.summary["per_example"] = {{"examples", n}, {"steps", o.per_example_steps}, {"lr", o.per_example_lr},
                              {"optimizer", o.per_example_optimizer},
                              {"all_outputs", correlations(est_all, true_all)},
                              {"true_class", correlations(est_y, true_y)},
                              {"l1", correlations(est_l1, true_l1)},
                              {"l1_linear", correlations(est_l1_lin, true_l1)}};
  if (n >= 2) {
    fmt::print("per example: estimated vs true softmax change, all outputs Pearson {}; true class Pearson {} Spearman {}\n",
               fixed(metrics::pearson(est_all, true_all), 3), fixed(metrics::pearson(est_y, true_y), 3),
               fixed(metrics::spearman(est_y, true_y), 3));
    fmt::print("per example: L1 of the softmax change, Spearman {} (the publication's linearised estimate: {})\n",
               fixed(metrics::spearman(est_l1, true_l1), 3), fixed(metrics::spearman(est_l1_lin, true_l1), 3));
  }
}

// 7. The most influential training examples, as a picture and a table.
void write_top_influential(const Run& r, const influence::Sensitivities& sens) {
  const auto& o = r.o;
  const auto top = influence::top_influential(sens, o.top_k);
  const auto score = influence::self_influence(sens);
  std::vector<std::string> labels;
  std::ofstream csv(o.out_dir + "/top_influential.csv");
  csv << "rank,index,label,name,self_influence,nll,loo_nll\n";
  for (size_t rank = 0; rank < top.size(); ++rank) {
    const auto i = top[rank];
    const auto y = r.train_set.targets[i].item<int64_t>();
    labels.push_back(fmt::format("{} {:.2f}", y, score[i].item<double>()));
    csv << fmt::format("{},{},{},{},{:.6f},{:.6f},{:.6f}\n", rank + 1, i, y, kFashionNames[static_cast<size_t>(y)],
                       score[i].item<double>(), sens.nll[i].item<double>(), sens.loo_nll[i].item<double>());
  }
  auto images = r.train_set.inputs.index_select(0, torch::tensor(top));  // a copy: drawn as the pixels were
  if (o.inputs == "standardized") data::denormalize_grey(images, data::fashion_mnist_stats());
  image::write_png(o.out_dir + "/top_influential.png",
                   image::labelled_grid(images, labels, {10, 2, /*unit_range=*/true}));
  fmt::print("wrote the {} most influential training images to {}/top_influential.png\n", top.size(), o.out_dir);
}

// The stages of a run, in order.
int run(const CLI::App& cli, Run& r) {
  auto& o = r.o;
  reuse_large_allocations();  // large per-batch tensors: no page-fault churn
  set_threads(o.threads);
  const auto form = influence::parse_form(o.form);
  check_options(cli, o);
  r.remove = classes_to_remove(o.remove_class);
  std::optional<app::Plotter> plotter;
  if (o.plot) plotter = app::find_plotter();  // before training: a missing matplotlib is a usage error
  r.protocols = o.retrain ? retraining_protocols(o) : std::vector<ProtocolRun>{};  // names checked now
  require_protocol_options(cli, r.protocols);
  load_data(r);
  torch::manual_seed(o.seed);
  if (!o.checkpoint.empty() && cli.get_option("--model")->count() == 0) o.model = model_of_file(o.checkpoint);
  r.model = make_model(o.model);
  r.summary = {{"version", kprior::version()}, {"torch_version", TORCH_VERSION},
               {"threads", torch::get_num_threads()}, {"model", o.model},
               {"architecture", architecture_name(o.model)}, {"form", o.form},
               {"train_size", r.train_set.size()}, {"prior_precision", o.prior_precision},
               {"data_dir", o.data_dir}, {"seed", o.seed}};
  const double train_nll = prepare_model(r, cli);
  const auto sens = compute_sensitivities(r, form, train_nll);
  const auto weights = influence::copy_weights(*r.model);  // every retraining starts here
  const auto chosen = chosen_classes(r, sens);
  const auto set_effects = o.set_form ? set_form_effects(r, chosen) : std::vector<influence::SetEffect>{};
  if (!chosen.empty() || !r.indices.empty()) retrain_without_classes(r, chosen, weights);
  if (!chosen.empty()) {
    write_class_table(r, chosen, set_effects);
    if (!r.protocols.empty()) report_agreement(r, chosen, set_effects);
  }
  if (!r.indices.empty()) remove_listed(r, sens, weights);
  if (o.per_example > 0) remove_single_examples(r, sens, weights);
  if (o.top_k > 0) write_top_influential(r, sens);
  std::ofstream(o.out_dir + "/summary.json") << r.summary.dump(2) << "\n";
  if (plotter) {
    std::string panels = r.remove.empty() ? "" : "classes";
    if (o.per_example > 0) panels += panels.empty() ? "examples" : ",examples";
    app::draw(*plotter, "influence", o.out_dir, o.out_dir + "/influence.png", {"--panels", panels});
  }
  fmt::print("results in {}/ (summary.json{}{}{}, influence.h5{})\n", o.out_dir,
             chosen.empty() ? "" : ", class_removal.csv", o.per_example > 0 ? ", per_example.csv" : "",
             o.top_k > 0 ? ", top_influential.png/.csv" : "", o.checkpoint.empty() ? ", model.h5" : "");
  return 0;
}

}  // namespace
}  // namespace mpe_influence

int main(int argc, char** argv) {
  mpe_influence::Run r;
  CLI::App cli{
      "mpe-influence: what if some training data had not been there? Trains a Fashion-MNIST\n"
      "classifier (or loads one with --checkpoint), forms its posterior and estimates, without\n"
      "retraining, how removing a class or a list of examples changes its predictions (the\n"
      "memory-perturbation equation, Nickl et al. 2023). --retrain checks the estimates against\n"
      "warm-started retraining. Writes CSV, JSON, HDF5 and PNG files to --out.",
      "mpe-influence"};
  mpe_influence::add_options(cli, r.o);
  return kprior::app::run_guarded(cli, argc, argv, [&] { return mpe_influence::run(cli, r); });
}
