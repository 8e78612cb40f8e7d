#include "options.h"

#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "app_main.h"
#include "kprior/core/error.h"
#include "kprior/core/parse.h"
#include "kprior/core/version.h"
#include "kprior/influence/perturbation.h"

namespace mpe_influence {

using nlohmann::json;
using namespace kprior;
namespace fs = std::filesystem;

void add_options(CLI::App& cli, Options& o) {
  cli.set_version_flag("--version", kprior::version());
  cli.add_option("--data-dir", o.data_dir, "folder with fashion-mnist/ (or the IDX files themselves)")->capture_default_str();
  cli.add_option("--out", o.out_dir, "output folder")->capture_default_str();
  cli.add_option("--model", o.model, "mlp (784-32-16-10, tanh) or lenet5 (tanh, average pooling), as published\n(default: mlp; with --checkpoint, the file's)")->capture_default_str();
  cli.add_option("--optimizer", o.optimizer,
                 "adam or sgd (momentum 0.9; Σ: diagonal GGN Laplace) or ivon (Σ: IVON's); with\n"
                 "--checkpoint, the optimizer of --retrain's converge protocol")->capture_default_str();
  cli.add_option("--posterior", o.posterior,
                 "with adam: laplace (diagonal GGN, the default) or adam (from Adam's second moments)")->capture_default_str();
  cli.add_option("--epochs", o.epochs, "training epochs (default, or 0: mlp 30, lenet5 10)");
  cli.add_option("--lr", o.lr, "learning rate (default: adam 1e-3, ivon 0.1; sgd as published: mlp 1e-2,\nlenet5 1e-1)");
  cli.add_option("--final-lr", o.final_lr, "learning rate at the end of the cosine decay (default, or 0: lr/100; sgd at\nthe published lr: 1e-3)");
  cli.add_option("--batch-size", o.batch_size, "training batch size")->capture_default_str();
  cli.add_option("--prior-precision", o.prior_precision, "δ, the prior precision of the summed loss")->capture_default_str();
  cli.add_option("--train-size", o.train_size, "use the first N training images (default, or 0: all 60,000)");
  cli.add_option("--inputs", o.inputs,
                 "standardized: (x - 0.2860)/0.3530 for pixels x in [0, 1], the publication's\n"
                 "Fashion-MNIST normalisation; unit: x in [0, 1] (model files that record no\n"
                 "scaling). With --checkpoint: the scaling the file's model was trained with")
      ->check(CLI::IsMember({"standardized", "unit"}))
      ->capture_default_str();
  cli.add_option("--seed", o.seed, "seed of initialisation, batches and sampling")
      ->check(kprior::app::not_negative())
      ->capture_default_str();
  cli.add_option("--threads", o.threads, "CPU threads (0 = all; at most the cores)")
      ->check(kprior::app::integer_in(0, 4096))
      ->capture_default_str();
  cli.add_option("--checkpoint", o.checkpoint, "model file (model.h5) a previous run wrote: skip training");
  cli.add_option("--form", o.form,
                 "perturbation form: diagonal (published), full, or glm (V(I-ΛV)⁻¹e: exact for a GLM\n"
                 "with its exact posterior; with a diagonal Σ it can overshoot, and examples with\n"
                 "an eigenvalue of ΛV >= 1 are counted and reported)")->capture_default_str();
  cli.add_option("--remove-class", o.remove_class, "estimate removing a class 0..9, or 'all' (each in turn)");
  cli.add_option("--remove-indices", o.remove_indices,
                 "estimate removing the training examples listed in FILE: 0-based indices into the\n"
                 "training set (its first --train-size images), separated by spaces, tabs, commas\n"
                 "or line breaks; an index given twice counts once");
  cli.add_flag("--set-form", o.set_form, "also the set form: posterior downdate + one Newton step, test NLL and accuracy");
  cli.add_flag("--plot", o.plot,
               "also draw influence.png: estimated vs retrained NLL per removed class (marker\n"
               "size: accuracy drop; with --retrain) and estimated vs true single-removal\n"
               "changes (with --per-example); needs Python 3 with matplotlib");
  cli.add_option("--top-k", o.top_k, "write the N most influential training images (top_influential.png/.csv)");
  auto* o_retrain = cli.add_flag("--retrain", o.retrain, "check the estimates against warm-started retraining without the removed data");
  auto* o_protocols = cli.add_option("--protocols", o.protocols,
                 "retraining protocols: published (SGD, momentum 0.9, small cosine lr), converge\n"
                 "(the training optimizer at a larger constant lr)")->capture_default_str();
  auto* o_retrain_epochs = cli.add_option("--retrain-epochs", o.retrain_epochs, "epochs of the published protocol (default, or 0: 10; the publication: 1000)");
  auto* o_converge_epochs = cli.add_option("--converge-epochs", o.converge_epochs, "epochs of the converge protocol")->capture_default_str();
  auto* o_converge_lr = cli.add_option("--converge-lr", o.converge_lr,
                                       "constant learning rate of the converge protocol (the same for every\n"
                                       "optimizer: with ivon, which trains from 0.1, give a larger one)")
                            ->capture_default_str();
  auto* o_per_example = cli.add_option("--per-example", o.per_example, "remove N random single examples, retrain for each (full batch), compare softmax changes");
  auto* o_pe_steps = cli.add_option("--per-example-steps", o.per_example_steps, "full-batch steps of each single-example retraining")->capture_default_str();
  auto* o_pe_lr = cli.add_option("--per-example-lr", o.per_example_lr, "learning rate of the single-example retraining")->capture_default_str();
  auto* o_pe_opt = cli.add_option("--per-example-optimizer", o.per_example_optimizer,
                 "optimizer of the single-example retraining (full-batch sgd: deterministic, no adaptive scaling)")->capture_default_str();
  // Options of a stage act only with that stage.
  for (auto* opt : {o_protocols, o_retrain_epochs, o_converge_epochs, o_converge_lr}) opt->needs(o_retrain);
  for (auto* opt : {o_pe_steps, o_pe_lr, o_pe_opt}) opt->needs(o_per_example);
}

// Refuses, before any data is read, options that contradict each other or cannot act.
void check_options(const CLI::App& cli, const Options& o) {
  if (o.posterior != "laplace" && o.posterior != "adam") throw UsageError("--posterior must be laplace or adam");
  if (o.posterior == "adam" && (o.optimizer != "adam" || !o.checkpoint.empty())) {
    throw UsageError("--posterior adam needs --optimizer adam and training (not --checkpoint)");
  }
  if (o.optimizer == "ivon" && cli.get_option("--posterior")->count() > 0) {
    throw UsageError("--posterior: with --optimizer ivon the posterior is IVON's own");
  }
  const auto remove = classes_to_remove(o.remove_class);
  if (o.top_k < 0 || o.per_example < 0) throw UsageError("--top-k and --per-example must be >= 0");
  if (o.plot && remove.empty() && o.per_example == 0) {
    throw UsageError("--plot draws class removals or single removals: give --remove-class or --per-example");
  }
  if (o.epochs < 0 || o.retrain_epochs < 0 || o.train_size < 0) {
    throw UsageError("--epochs, --retrain-epochs and --train-size must be >= 0 (0: the default)");
  }
  if (o.per_example == 0) {  // --per-example 0 counts as given: its options would not act
    for (const char* name : {"--per-example-steps", "--per-example-lr", "--per-example-optimizer"}) {
      if (cli.get_option(name)->count() > 0) throw UsageError(std::string(name) + " sets --per-example's runs: give --per-example N > 0");
    }
  }
  if (cli.get_option("--checkpoint")->count() > 0 && o.checkpoint.empty()) {
    throw UsageError("--checkpoint needs a model file (model.h5)");
  }
  if (o.converge_epochs <= 0 || o.per_example_steps <= 0) {
    throw UsageError("--converge-epochs and --per-example-steps must be > 0");
  }
  require_non_negative("--lr (0: the optimizer's default)", o.lr);
  require_non_negative("--final-lr (0: the default)", o.final_lr);
  require_positive("--converge-lr", o.converge_lr);
  require_positive("--per-example-lr", o.per_example_lr);
  require_positive("--prior-precision", o.prior_precision);
  if (o.batch_size <= 0) throw UsageError("--batch-size must be > 0");
  for (const auto& [name, value] : {std::pair<const char*, std::string>{"--optimizer", o.optimizer},
                                    {"--per-example-optimizer", o.per_example_optimizer}}) {
    try {
      train::parse_optimizer(value);
    } catch (const UsageError& e) {
      throw UsageError(std::string(name) + ": " + e.what());
    }
  }
  if (o.set_form && remove.empty()) {
    throw UsageError("--set-form adds the set form to --remove-class (a --remove-indices set always gets it)");
  }
  if (o.checkpoint.empty()) {
    const auto fit = training_options(o);
    if (fit.final_lr() > fit.lr()) {
      throw UsageError(fmt::format("--final-lr {:g} is above the learning rate {:g}: the cosine schedule decays "
                                   "from the one to the other", fit.final_lr(), fit.lr()));
    }
  } else if (cli.get_option("--seed")->count() > 0 && !o.retrain && o.per_example == 0) {
    throw UsageError("--seed with --checkpoint acts only on --retrain and --per-example (the model comes from the "
                     "file)");
  }
  if (!o.checkpoint.empty() && fs::is_directory(o.checkpoint)) {
    throw FileError(o.checkpoint, "is a folder: give the model.h5 in it");
  }
  if (o.retrain && remove.empty() && o.remove_indices.empty()) {
    throw UsageError("--retrain retrains without removed data: give --remove-class or --remove-indices");
  }
  if (!o.checkpoint.empty()) {
    // The model and its posterior come from the file: training options cannot act.
    for (const char* name : {"--epochs", "--lr", "--final-lr", "--prior-precision", "--posterior"}) {
      if (cli.get_option(name)->count() > 0) {
        throw UsageError(std::string(name) + " applies to training; with --checkpoint the model and its posterior "
                         "(and its δ) come from the file");
      }
    }
    for (const char* name : {"--optimizer", "--batch-size"}) {  // these also set --retrain's runs
      if (cli.get_option(name)->count() > 0 && !o.retrain) {
        throw UsageError(std::string(name) + " with --checkpoint acts only on --retrain's runs (the model comes "
                         "from the file)");
      }
    }
  }
}

std::vector<int64_t> classes_to_remove(const std::string& text) {
  if (text.empty()) return {};
  if (text == "all") return {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  const auto c = parse_integer<int64_t>(text);
  if (!c || *c < 0 || *c > 9) throw UsageError("--remove-class must be a class 0..9 or 'all', got '" + text + "'");
  return {*c};
}

std::vector<int64_t> read_indices(const std::string& path, int64_t n) {
  if (fs::is_directory(path)) throw FileError(path, "is a directory, not a --remove-indices file");
  std::ifstream in(path);
  if (!in) throw FileError(path, "cannot read the --remove-indices file");
  std::vector<int64_t> out;
  std::string token;
  while (in >> token) {
    for (auto& c : token) if (c == ',') c = ' ';
    std::stringstream parts(token);
    std::string item;
    while (parts >> item) {
      const auto parsed = parse_integer<int64_t>(item);
      if (!parsed) throw FileError(path, "'" + item + "' is not an index");
      const int64_t v = *parsed;
      if (v < 0 || v >= n) throw FileError(path, fmt::format("index {} is outside the training set (0..{})", v, n - 1));
      out.push_back(v);
    }
  }
  std::sort(out.begin(), out.end());
  const auto given = out.size();
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (out.empty()) throw FileError(path, "no indices to remove (the removal set is empty)");
  if (out.size() < given) {
    fmt::print("note: {} lists {} indices more than once; each is removed once ({} examples)\n", path,
               given - out.size(), out.size());
  }
  return out;
}

train::FitOptions training_options(const Options& o) {
  const auto opt = train::parse_optimizer(o.optimizer);
  // SGD takes the publication's cosine decays (Nickl et al. 2023, App. D and its code: MLP
  // 1e-2 → 1e-3, LeNet-5 1e-1 → 1e-3); Adam and IVON, not used there, the optimizer's rate
  // decayed to lr/100.
  const bool sgd = opt == train::OptimizerKind::SGD;
  const double published_lr = o.model == "mlp" ? 1e-2 : 1e-1;
  const double lr = o.lr > 0 ? o.lr : sgd ? published_lr : train::default_lr(opt);
  // A cosine decay ends training close to a minimum, where the Laplace posterior and the
  // perturbation equation are meant to be applied (with a constant lr the last iterate is
  // noisy, and even tiny-lr retraining on all data still improves it).
  return train::FitOptions()
      .optimizer(opt)
      .lr(lr)
      .final_lr(o.final_lr > 0 ? o.final_lr : sgd && lr == published_lr ? 1e-3 : lr / 100)
      .epochs(o.epochs > 0 ? o.epochs : (o.model == "mlp" ? 30 : 10))
      .batch_size(o.batch_size)
      .prior_precision(o.prior_precision)
      .seed(o.seed);
}

// How a model was trained, as model.h5 records it and summary.json reports it.
json training_settings(const Options& o, const train::FitOptions& fit, const std::string& posterior) {
  return {{"optimizer", o.optimizer}, {"posterior", posterior}, {"epochs", fit.epochs()}, {"lr", fit.lr()},
          {"final_lr", fit.final_lr()}, {"batch_size", fit.batch_size()}, {"prior_precision", fit.prior_precision()},
          {"seed", o.seed}, {"data_dir", o.data_dir}, {"inputs", o.inputs}};
}

std::vector<ProtocolRun> retraining_protocols(const Options& o) {
  std::vector<ProtocolRun> runs;
  std::stringstream in(o.protocols);
  std::string name;
  while (std::getline(in, name, ',')) {
    if (name.empty()) continue;  // "published," and ",converge" alike
    auto fit = training_options(o);
    for (const auto& r : runs) {
      if (r.name == name) throw UsageError("--protocols: '" + name + "' is given twice");
    }
    if (name == "published") {
      // Warm start, same δ, SGD with momentum 0.9 and a small cosine learning rate (Nickl et
      // al. 2023, App. D; its code's retraining): MLP 1e-5 → 1e-6, LeNet-5 1e-4 → 1e-5, for
      // 1000 epochs (default here: 10), whatever optimizer trained the model.
      const double lr = o.model == "mlp" ? 1e-5 : 1e-4;
      fit.optimizer(train::OptimizerKind::SGD).lr(lr).final_lr(lr / 10).epochs(o.retrain_epochs > 0 ? o.retrain_epochs : 10);
      // With a loaded model: the batch size it was trained with (--batch-size sets converge's).
      if (o.recorded_batch_size > 0) fit.batch_size(o.recorded_batch_size);
    } else if (name == "converge") {
      fit.lr(o.converge_lr).final_lr(-1).epochs(o.converge_epochs);
    } else {
      throw UsageError("--protocols: unknown protocol '" + name + "' (expected published, converge)");
    }
    runs.push_back({name, fit, {}, {}});
  }
  if (runs.empty()) throw UsageError("--protocols: no protocol given");
  return runs;
}

// A protocol's options without that protocol could not act: refused, not ignored.
void require_protocol_options(const CLI::App& cli, const std::vector<ProtocolRun>& runs) {
  const auto has = [&](const std::string& name) {
    return std::any_of(runs.begin(), runs.end(), [&](const ProtocolRun& r) { return r.name == name; });
  };
  if (cli.get_option("--retrain-epochs")->count() > 0 && !has("published")) {
    throw UsageError("--retrain-epochs sets the published protocol's epochs; --protocols has no 'published'");
  }
  for (const char* name : {"--converge-epochs", "--converge-lr"}) {
    if (cli.get_option(name)->count() > 0 && !has("converge")) {
      throw UsageError(std::string(name) + " sets the converge protocol; --protocols has no 'converge'");
    }
  }
  // With a loaded model --optimizer sets only the converge protocol's (published: always SGD).
  if (!cli.get_option("--checkpoint")->empty() && cli.get_option("--optimizer")->count() > 0 && !runs.empty() &&
      !has("converge")) {
    throw UsageError("--optimizer with --checkpoint sets the converge protocol's optimizer; --protocols has no "
                     "'converge' (the published protocol retrains with SGD)");
  }
}

void require_batch_size_acts(const CLI::App& cli, const Options& o, const std::vector<ProtocolRun>& runs) {
  if (cli.get_option("--batch-size")->count() == 0 || o.recorded_batch_size == 0) return;
  if (std::none_of(runs.begin(), runs.end(), [](const ProtocolRun& r) { return r.name == "converge"; })) {
    throw UsageError(fmt::format("--batch-size with --checkpoint sets the converge protocol's batch size (the "
                                 "published protocol keeps the file's, {}); --protocols has no 'converge'",
                                 o.recorded_batch_size));
  }
}

// The input scaling the model in a model file was trained with (its recorded training settings;
// files without a training record at all are older still: unit).
std::string inputs_of_file(const std::optional<influence::TrainingRecord>& training, const CLI::App& cli,
                           const Options& o) {
  const auto scaling = training ? influence::recorded_input_scaling(o.checkpoint, training->settings_json)
                                : influence::InputScaling{"unit", false};
  const auto& saved = scaling.name;
  if (cli.get_option("--inputs")->count() > 0 && o.inputs != saved) {
    throw UsageError("--inputs " + o.inputs + ": the model in " + o.checkpoint + " was trained on " + saved +
                     " inputs, which it is evaluated on");
  }
  if (!scaling.recorded) {
    fmt::print("note: {} records no input scaling (an older file): its model saw pixels in [0, 1] "
               "(--inputs unit)\n", o.checkpoint);
  }
  return saved;
}

// A loaded model's retraining (the converge protocol) uses the optimizer and batch size it
// was trained with, unless --optimizer or --batch-size say otherwise.
void adopt_file_training(const json& training, const CLI::App& cli, Options& o) {
  if (cli.get_option("--optimizer")->count() == 0 && training.contains("optimizer") && training["optimizer"].is_string()) {
    o.optimizer = training["optimizer"].get<std::string>();
  }
  if (training.contains("batch_size") && training["batch_size"].is_number_integer()) {
    o.recorded_batch_size = training["batch_size"].get<int64_t>();  // the published protocol's
    if (cli.get_option("--batch-size")->count() == 0) o.batch_size = o.recorded_batch_size;
  }
}

// Creates --out and removes the files an earlier run wrote there, so that none is read as this
// run's (nor stays beside this run's if this one fails), and says which. model.h5 stays when it
// is this run's --checkpoint and is replaced when this run trains; a run that loads another
// model refuses to leave an earlier model beside its results, rather than delete it.
void prepare_output_dir(const Options& o) {
  const auto model = fs::path(o.out_dir) / "model.h5";
  std::error_code ec;
  const bool loads_it = !o.checkpoint.empty() && fs::equivalent(model, o.checkpoint, ec);
  if (!o.checkpoint.empty() && !loads_it && fs::exists(model)) {
    throw UsageError("--out " + o.out_dir + " holds the model.h5 of an earlier run, and this run loads another "
                     "model (" + o.checkpoint + "): give another --out, or remove that model.h5 first");
  }
  app::create_output_dir(o.out_dir);
  std::set<std::string> earlier = {"summary.json",    "influence.h5",        "class_removal.csv",  "per_example.csv",
                                   "top_influential.csv", "top_influential.png", "influence.png"};
  if (o.checkpoint.empty()) earlier.insert("model.h5");  // this run trains a new one
  const auto removed =
      app::remove_earlier_outputs(o.out_dir, [&](const std::string& name) { return earlier.count(name) > 0; });
  if (!removed.empty()) fmt::print("note: {} held an earlier run; removed its {}\n", o.out_dir, removed);
}

}  // namespace mpe_influence
