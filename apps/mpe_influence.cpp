// mpe-influence: "what if these training examples had not been there?" answered from the
// posterior with the memory-perturbation equation (Nickl et al., NeurIPS 2023; METHODS.md §5),
// optionally checked against brute-force retraining. The logic lives in kprior::influence;
// this file reads options, calls it, prints and writes the results.
#include <fmt/core.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "app_main.h"
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
#include "kprior/influence/single_removal.h"
#include "kprior/metrics/correlation.h"
#include "kprior/nn/lenet5.h"
#include "kprior/nn/mlp.h"
#include "kprior/train/map_fit.h"

namespace {

using nlohmann::json;
using namespace kprior;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

const std::vector<std::string> kFashionNames = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                                "sandal",  "shirt",   "sneaker",  "bag",   "boot"};

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
};

// --- data and model ----------------------------------------------------------------------

std::string fashion_dir(const std::string& dir) {
  return fs::exists(fs::path(dir) / "fashion-mnist") ? (fs::path(dir) / "fashion-mnist").string() : dir;
}

// The inputs a model sees: "standardized" as the publication's Fashion-MNIST transform
// ((x − 0.2860)/0.3530 on pixels in [0, 1]), or "unit" (pixels in [0, 1], what mpe-influence
// trained on before it standardised; model files of then record no input scaling).
void scale_inputs(data::Dataset& train, data::Dataset& test, const std::string& inputs) {
  if (inputs == "unit") return;
  data::normalize_grey(train.inputs, data::fashion_mnist_stats());
  data::normalize_grey(test.inputs, data::fashion_mnist_stats());
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

// Refuses, before any training, removals the training set cannot give: a class it does not
// hold (a small --train-size), or single removals from fewer than two examples.
void require_removable(const data::Dataset& train, const std::vector<int64_t>& classes, int64_t per_example) {
  const auto counts = torch::bincount(train.targets, {}, 10);
  for (const auto c : classes) {
    if (counts[c].item<int64_t>() == 0) {
      throw UsageError(fmt::format("--remove-class: class {} ({}) has no examples among the {} training images",
                                   c, kFashionNames[static_cast<size_t>(c)], train.size()));
    }
  }
  if (per_example > 0 && train.size() < 2) {
    throw UsageError("--per-example needs at least 2 training images to remove one and retrain");
  }
}

// A loaded model's retraining (the converge protocol) uses the optimizer and batch size it
// was trained with, unless --optimizer or --batch-size say otherwise.
void adopt_file_training(const json& training, const CLI::App& cli, Options& o) {
  if (cli.get_option("--optimizer")->count() == 0 && training.contains("optimizer") && training["optimizer"].is_string()) {
    o.optimizer = training["optimizer"].get<std::string>();
  }
  if (cli.get_option("--batch-size")->count() == 0 && training.contains("batch_size") &&
      training["batch_size"].is_number_integer()) {
    o.batch_size = training["batch_size"].get<int64_t>();
  }
}

// Creates --out and removes the files of an earlier run there that this one will not write
// (they would be read as this run's); model.h5 stays (it may be this run's --checkpoint).
void prepare_output_dir(const Options& o, const std::vector<int64_t>& remove) {
  app::create_output_dir(o.out_dir);
  std::vector<std::string> stale;
  if (remove.empty()) stale.push_back("class_removal.csv");
  if (o.per_example == 0) stale.push_back("per_example.csv");
  if (o.top_k == 0) stale.insert(stale.end(), {"top_influential.csv", "top_influential.png"});
  if (!o.plot) stale.push_back("influence.png");
  for (const auto& name : stale) fs::remove(fs::path(o.out_dir) / name);
}

std::shared_ptr<nn::TapedModule> make_model(const std::string& name) {
  // The publication's models: a 32-16 tanh MLP and LeNet-5 with tanh and average pooling
  // (Nickl et al. 2023, §4 and App. D).
  if (name == "mlp") return nn::MLP(std::vector<int64_t>{784, 32, 16, 10}, nn::Activation::Tanh).ptr();
  if (name == "lenet5") return nn::LeNet5(10, 1, nn::Activation::Tanh, nn::Pooling::Average).ptr();
  throw UsageError("--model must be mlp or lenet5, got '" + name + "'");
}

// The name a model file records: LeNet-5's says which one, since the files of kprior 0.1.0
// before it followed the publication hold a ReLU, max-pooling LeNet-5 of the same shapes.
std::string architecture_name(const std::string& model) {
  return model == "lenet5" ? "lenet5-tanh-avgpool" : model;
}

// What to tell the user about a file's architecture: the --model that loads it.
std::string model_option_of(const std::string& architecture) {
  if (architecture == "mlp") return "--model mlp";
  if (architecture == "lenet5-tanh-avgpool") return "--model lenet5";
  if (architecture == "lenet5") {
    return "a ReLU, max-pooling LeNet-5 of an earlier kprior, which no --model loads now (mpe-influence's "
           "LeNet-5 is the published tanh, average-pooling one): train it again";
  }
  return "an unknown architecture '" + architecture + "'";
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
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (out.empty()) throw FileError(path, "no indices to remove (the removal set is empty)");
  return out;
}

std::vector<int64_t> classes_to_remove(const std::string& text) {
  if (text.empty()) return {};
  if (text == "all") return {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  const auto c = parse_integer<int64_t>(text);
  if (!c || *c < 0 || *c > 9) throw UsageError("--remove-class must be a class 0..9 or 'all', got '" + text + "'");
  return {*c};
}

// --- printing and files ----------------------------------------------------------------------

std::string fixed(double v, int digits = 4) { return std::isfinite(v) ? fmt::format("{:.{}f}", v, digits) : "nan"; }

struct ProtocolRun {
  std::string name;
  train::FitOptions fit;
  influence::RetrainOutcome control;
  std::vector<influence::RetrainOutcome> per_class;
};

json correlations(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() < 2) return nullptr;
  return {{"pearson", metrics::pearson(a, b)}, {"spearman", metrics::spearman(a, b)}};
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

std::vector<ProtocolRun> retraining_protocols(const Options& o) {
  std::vector<ProtocolRun> runs;
  std::stringstream in(o.protocols);
  std::string name;
  while (std::getline(in, name, ',')) {
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

// How a model was trained, as model.h5 records it and summary.json reports it.
json training_settings(const Options& o, const train::FitOptions& fit, const std::string& posterior) {
  return {{"optimizer", o.optimizer}, {"posterior", posterior}, {"epochs", fit.epochs()}, {"lr", fit.lr()},
          {"final_lr", fit.final_lr()}, {"batch_size", fit.batch_size()}, {"prior_precision", fit.prior_precision()},
          {"seed", o.seed}, {"data_dir", o.data_dir}, {"inputs", o.inputs}};
}

// --- the stages of a run -----------------------------------------------------------------------

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

void add_options(CLI::App& cli, Options& o) {
  cli.set_version_flag("--version", kprior::version());
  cli.add_option("--data-dir", o.data_dir, "folder with fashion-mnist/ (or the IDX files themselves)")->capture_default_str();
  cli.add_option("--out", o.out_dir, "output folder")->capture_default_str();
  cli.add_option("--model", o.model, "mlp (784-32-16-10, tanh) or lenet5 (tanh, average pooling), as published")->capture_default_str();
  cli.add_option("--optimizer", o.optimizer,
                 "adam or sgd (momentum 0.9; Σ: diagonal GGN Laplace) or ivon (Σ: IVON's); with\n"
                 "--checkpoint, the optimizer of --retrain's converge protocol")->capture_default_str();
  cli.add_option("--posterior", o.posterior,
                 "with adam: laplace (diagonal GGN, the default) or adam (from Adam's second moments)")->capture_default_str();
  cli.add_option("--epochs", o.epochs, "training epochs (default, or 0: mlp 30, lenet5 10)");
  cli.add_option("--lr", o.lr, "learning rate (default: adam 1e-3, ivon 0.1; sgd as published: mlp 1e-2,\nlenet5 1e-1)");
  cli.add_option("--final-lr", o.final_lr, "learning rate at the end of the cosine decay (default: lr/100; sgd at the\npublished lr: 1e-3)");
  cli.add_option("--batch-size", o.batch_size, "training batch size")->capture_default_str();
  cli.add_option("--prior-precision", o.prior_precision, "δ, the prior precision of the summed loss")->capture_default_str();
  cli.add_option("--train-size", o.train_size, "use the first N training images (default, or 0: all 60,000)");
  cli.add_option("--inputs", o.inputs,
                 "standardized: (x - 0.2860)/0.3530 for pixels x in [0, 1], the publication's\n"
                 "Fashion-MNIST normalisation; unit: x in [0, 1] (model files that record no\n"
                 "scaling). With --checkpoint: the scaling the file's model was trained with")
      ->check(CLI::IsMember({"standardized", "unit"}))
      ->capture_default_str();
  cli.add_option("--seed", o.seed, "seed of initialisation, batches and sampling")->capture_default_str();
  cli.add_option("--threads", o.threads, "CPU threads (0 = all; at most the cores)")
      ->check(kprior::app::integer_in(0, 4096))
      ->capture_default_str();
  cli.add_option("--checkpoint", o.checkpoint, "model file (model.h5) a previous run wrote: skip training");
  cli.add_option("--form", o.form,
                 "perturbation form: diagonal (published), full, or glm (V(I-ΛV)⁻¹e: exact for a GLM\n"
                 "with its exact posterior; with a diagonal Σ it can overshoot, and examples with\n"
                 "an eigenvalue of ΛV >= 1 are counted and reported)")->capture_default_str();
  cli.add_option("--remove-class", o.remove_class, "estimate removing a class 0..9, or 'all' (each in turn)");
  cli.add_option("--remove-indices", o.remove_indices, "estimate removing the training examples listed in FILE");
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
  auto* o_converge_lr = cli.add_option("--converge-lr", o.converge_lr, "learning rate of the converge protocol")->capture_default_str();
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
  require_removable(train_set, r.remove, o.per_example);
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
    prepare_output_dir(o, r.remove);
    o.prior_precision = loaded.prior_precision;
    summary["prior_precision"] = o.prior_precision;  // the file's δ
    if (o.retrain) r.protocols = retraining_protocols(o);  // retrain towards the file's δ
    summary["checkpoint"] = o.checkpoint;
    model.eval();
    fmt::print("loaded {} and its posterior ({}) from {}\n", o.model, q->source(), o.checkpoint);
  } else {
    scale_inputs(train_set, test_set, o.inputs);
    prepare_output_dir(o, r.remove);
    const auto fit = training_options(o);
    fmt::print("training {} on {} Fashion-MNIST images ({} inputs): {} epochs, {} lr {}, δ = {}\n", o.model,
               train_set.size(), o.inputs, fit.epochs(), o.optimizer, fit.lr(), o.prior_precision);
    const auto report = train::fit_map(model, train_set, r.cols, fit, [&](int64_t e, double loss) {
      fmt::print("  epoch {}/{}  loss {:.4f}\n", e + 1, fit.epochs(), loss);
      std::fflush(stdout);
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
    p.control = influence::retrain_without(*r.model, weights, r.train_set, r.test_set, r.cols, {}, p.fit);
    for (size_t k = 0; k < chosen.size(); ++k) {
      fmt::print("  without class {} ({}/{}) ...", chosen[k].label, k + 1, chosen.size());
      std::fflush(stdout);
      const auto removed = influence::indices_of_class(r.train_set.targets, chosen[k].label);
      const auto& run = p.per_class.emplace_back(
          influence::retrain_without(*r.model, weights, r.train_set, r.test_set, r.cols, removed, p.fit));
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
  for (const auto& p : r.protocols) fmt::print(" {:>12} {:>9}", p.name + " NLL", "acc drop");
  fmt::print("\n");
  json classes = json::array();
  for (size_t k = 0; k < chosen.size(); ++k) {
    const auto& e = chosen[k];
    const auto& name = kFashionNames[static_cast<size_t>(e.label)];
    csv << fmt::format("{},{},{},{:.9g},{:.9g}", e.label, name, e.removed, e.train_nll, e.estimated_nll);
    json row = {{"class", e.label}, {"name", name}, {"removed", e.removed},
                {"train_nll", e.train_nll}, {"estimated_nll", e.estimated_nll}};
    if (set_form) {
      const auto& s = set_effects[k];
      csv << fmt::format(",{:.9g},{:.9g},{:.9g}", s.removed_nll, s.test_nll, s.test_accuracy);
      row["set_form"] = {{"removed_nll", s.removed_nll}, {"test_nll", s.test_nll},
                         {"test_accuracy", s.test_accuracy}, {"clamped", s.clamped}};
    }
    fmt::print("{:>5} {:>9} {:>7} {:>10} {:>10}", e.label, name, e.removed, fixed(e.train_nll), fixed(e.estimated_nll));
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
  json set = {{"removed", indices.size()},
              {"estimated_nll", sens.loo_nll.index_select(0, idx).mean().item<double>()},
              {"train_nll", sens.nll.index_select(0, idx).mean().item<double>()}};
  const auto eff = influence::estimate_set_effect(*r.model, r.train_set, r.test_set, r.cols, *r.q, indices,
                                                  r.o.prior_precision);
  set["set_form"] = {{"removed_nll", eff.removed_nll}, {"test_nll", eff.test_nll}, {"test_accuracy", eff.test_accuracy}};
  fmt::print("removing {} listed examples: estimated NLL on them {:.4f} (now {:.4f}); set form: test NLL {:.4f}, acc {:.4f}\n",
             indices.size(), set["estimated_nll"].get<double>(), set["train_nll"].get<double>(), eff.test_nll, eff.test_accuracy);
  for (const auto& p : r.protocols) {
    const auto run = influence::retrain_without(*r.model, weights, r.train_set, r.test_set, r.cols, indices, p.fit);
    set[p.name] = {{"removed_nll", run.removed_nll}, {"test_nll", run.test_nll}, {"test_accuracy", run.test_accuracy},
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
  const auto rows = influence::compare_single_removals(
      *r.model, weights, r.train_set, r.cols, sens, {order.begin(), order.begin() + n}, fit,
      [](int64_t done, int64_t total) {
        if (done % 10 == 0 || done == total) {
          fmt::print("  {}/{} removed and retrained\n", done, total);
          std::fflush(stdout);
        }
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

}  // namespace

int main(int argc, char** argv) {
  Run r;
  auto& o = r.o;
  CLI::App cli{
      "mpe-influence: what if some training data had not been there? Trains a Fashion-MNIST\n"
      "classifier (or loads one with --checkpoint), forms its posterior and estimates, without\n"
      "retraining, how removing a class or a list of examples changes its predictions (the\n"
      "memory-perturbation equation, Nickl et al. 2023). --retrain checks the estimates against\n"
      "warm-started retraining. Writes CSV, JSON, HDF5 and PNG files to --out.",
      "mpe-influence"};
  add_options(cli, o);

  return app::run_guarded(cli, argc, argv, [&]() -> int {
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
  });
}
