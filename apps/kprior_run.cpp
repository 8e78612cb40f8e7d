// kprior-run: runs a continual-learning experiment on a task sequence and writes its results.
// This version trains the fine-tuning baseline (no regularizer) with IVON, Adam or SGD; the
// regularized methods (EWC, FROMP, replay, K-prior) are added by the methods work (issue 5).
#include <fmt/core.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app_main.h"
#include "kprior/core/threads.h"
#include "kprior/core/version.h"
#include "kprior/data/benchmarks.h"
#include "kprior/train/finetune.h"

namespace {

std::vector<int64_t> parse_widths(const std::string& text) {
  std::vector<int64_t> widths;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      widths.push_back(std::stoll(item));
    } catch (const std::exception&) {
      throw kprior::UsageError("--hidden: '" + item + "' is not an integer");
    }
  }
  return widths;
}

void write_outputs(const std::string& out_dir, const nlohmann::json& config,
                   const kprior::train::SequenceResult& r) {
  std::filesystem::create_directories(out_dir);
  const int64_t last = r.task_incremental.num_tasks() - 1;
  nlohmann::json results;
  results["kprior_version"] = kprior::version();
  results["config"] = config;
  results["task_incremental"] = {{"accuracy_matrix", r.task_incremental.rows()},
                                 {"average_accuracy", r.task_incremental.average(last)},
                                 {"backward_transfer", r.task_incremental.backward_transfer(last)},
                                 {"forgetting", r.task_incremental.forgetting(last)}};
  results["class_incremental"] = {{"accuracy_matrix", r.class_incremental.rows()},
                                  {"average_accuracy", r.class_incremental.average(last)}};
  results["train_seconds_per_task"] = r.train_seconds;
  // JSON has no NaN: unset entries (j > i) become null.
  std::ofstream(out_dir + "/results.json") << results.dump(2) << "\n";
  std::ofstream csv(out_dir + "/accuracy_matrix.csv");
  csv << "after_task";
  for (int64_t j = 0; j <= last; ++j) csv << ",task_" << j;
  csv << "\n";
  for (int64_t i = 0; i <= last; ++i) {
    csv << i;
    for (int64_t j = 0; j <= last; ++j) {
      csv << ",";
      if (j <= i) csv << fmt::format("{:.4f}", r.task_incremental.at(i, j));
    }
    csv << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Run a continual-learning experiment: train on each task of a sequence in turn,\n"
               "evaluate all tasks seen so far after each, write results.json and\n"
               "accuracy_matrix.csv to --out.",
               "kprior-run"};
  std::string tasks = "split-mnist", method = "finetune", optimizer = "ivon";
  std::string data_dir = "data", out_dir = "out/kprior-run", hidden = "256,256";
  int64_t epochs = 5, batch_size = 128;
  double lr = 0;
  uint64_t seed = 0;
  int threads = 0;
  cli.add_option("--tasks", tasks, "task sequence: split-mnist, permuted-mnist, split-fashion")
      ->capture_default_str();
  cli.add_option("--method", method, "continual-learning method (this build: finetune)")
      ->capture_default_str();
  cli.add_option("--optimizer", optimizer, "ivon, adam or sgd")->capture_default_str();
  cli.add_option("--epochs", epochs, "epochs per task")->capture_default_str();
  cli.add_option("--batch-size", batch_size, "mini-batch size")->capture_default_str();
  cli.add_option("--lr", lr, "learning rate (default: ivon 0.1, adam 1e-3, sgd 0.01)");
  cli.add_option("--hidden", hidden, "hidden widths of the MLP, comma-separated")
      ->capture_default_str();
  cli.add_option("--seed", seed, "seed of initialisation, shuffling and noise")
      ->capture_default_str();
  cli.add_option("--data-dir", data_dir,
                 "folder with the bundled data (mnist10k/, fashion-mnist/) or with IDX files")
      ->capture_default_str();
  cli.add_option("--out", out_dir, "output folder")->capture_default_str();
  cli.add_option("--threads", threads, "LibTorch threads (0 = all cores)")->capture_default_str();
  cli.set_version_flag("--version", kprior::version());

  return kprior::app::run_guarded(cli, argc, argv, [&] {
    if (method != "finetune") {
      throw kprior::UsageError("--method " + method +
                               " is not available in this build (available: finetune)");
    }
    const auto opts = kprior::train::FinetuneOptions()
                          .optimizer(kprior::train::parse_optimizer(optimizer))
                          .lr(lr).epochs(epochs).batch_size(batch_size).seed(seed);
    opts.validate();
    auto widths = parse_widths(hidden);
    const int n_threads = kprior::set_threads(threads);
    const auto seq = kprior::data::make_benchmark(tasks, data_dir, seed);
    widths.insert(widths.begin(), seq.tasks[0].train.inputs[0].numel());
    widths.push_back(seq.num_outputs);
    torch::manual_seed(seed);
    kprior::nn::MLP model(widths);

    fmt::print("kprior-run {}: {} ({} tasks), method {}, optimizer {} (lr {}), {} epochs, "
               "{} threads\n", kprior::version(), tasks, seq.size(), method, optimizer,
               opts.effective_lr(), epochs, n_threads);
    kprior::train::Callbacks cb;
    cb.on_epoch_end = [](const kprior::train::Progress& p) {
      fmt::print("  task {}/{} epoch {}/{}  loss {:.4f}\n", p.task + 1, p.num_tasks, p.epoch + 1,
                 p.epochs, p.mean_loss);
      std::fflush(stdout);
    };
    cb.on_task_end = [](int64_t t, const std::vector<double>& accs) {
      double mean = 0;
      std::string row;
      for (double a : accs) {
        mean += a;
        row += fmt::format(" {:.1f}", 100 * a);
      }
      fmt::print("after task {}: accuracy (%){}  | average {:.2f}\n", t + 1, row,
                 100 * mean / static_cast<double>(accs.size()));
    };
    const auto result = kprior::train::train_finetune(model, seq, opts, cb);
    nlohmann::json config = {{"tasks", tasks}, {"method", method}, {"optimizer", optimizer},
                             {"lr", opts.effective_lr()}, {"epochs", epochs},
                             {"batch_size", batch_size}, {"hidden", hidden}, {"seed", seed},
                             {"threads", n_threads}, {"data_dir", data_dir}};
    write_outputs(out_dir, config, result);
    const int64_t last = seq.size() - 1;
    fmt::print("average accuracy {:.2f}% (task-incremental), {:.2f}% (class-incremental); "
               "BWT {:+.2f}; results in {}\n",
               100 * result.task_incremental.average(last),
               100 * result.class_incremental.average(last),
               100 * result.task_incremental.backward_transfer(last), out_dir);
    return 0;
  });
}
