// kprior-inspect: what a checkpoint holds — the run, posterior statistics, the memory of each
// task and class, the metrics so far — as text or JSON, and the remembered images as a PNG.
#include <fmt/core.h>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "app_main.h"
#include "kprior/checkpoint/file.h"
#include "kprior/checkpoint/objects.h"
#include "kprior/checkpoint/summary.h"
#include "kprior/core/version.h"
#include "kprior/data/benchmarks.h"
#include "kprior/image/grid.h"
#include "kprior/image/png.h"
#include "kprior/influence/files.h"

namespace {

using nlohmann::json;
using kprior::checkpoint::Stats;

json stats_json(const Stats& s) {
  return {{"count", s.count}, {"min", s.min}, {"median", s.median}, {"max", s.max}, {"mean", s.mean}};
}

json nan_to_null(const std::vector<double>& row) {
  json out = json::array();
  for (double v : row) out.push_back(std::isnan(v) ? json() : json(v));
  return out;
}

// An mpe-influence model file: what it is and how it was trained (its inputs: files that do not
// record them were trained on pixels in [0, 1]).
void print_model_file(const kprior::checkpoint::Summary& s) {
  fmt::print("mpe-influence model: {}, prior precision δ = {:g}\n", s.architecture, s.prior_precision);
  if (s.training_settings_json.empty()) return;
  const auto t = json::parse(s.training_settings_json, nullptr, false);
  if (t.is_discarded() || !t.is_object()) {
    fmt::print("trained on {} examples; its training settings are not JSON: {}\n", s.training_examples,
               s.training_settings_json);
    return;
  }
  std::string inputs;
  try {
    const auto scaling = kprior::influence::recorded_input_scaling(s.file, s.training_settings_json);
    inputs = scaling.recorded ? scaling.name : scaling.name + " (not recorded: an older file)";
  } catch (const kprior::FileError&) {
    inputs = t["inputs"].dump() + " (not a scaling mpe-influence knows)";
  }
  fmt::print("trained on {} examples: {}, {} epochs, lr {} → {}, batch {}, seed {}; inputs {}\n",
             s.training_examples, t.value("optimizer", "?"), t.value("epochs", 0), t.value("lr", 0.0),
             t.value("final_lr", 0.0), t.value("batch_size", 0), t.value("seed", 0), inputs);
}

json summary_json(const kprior::checkpoint::Summary& s) {
  json out = {{"file", s.file}, {"producer", s.producer}, {"format_version", s.format_version},
              {"content", s.content}, {"parameters", s.parameters}};
  if (!s.architecture.empty()) {
    out["model"] = {{"architecture", s.architecture}, {"prior_precision", s.prior_precision}};
    if (!s.training_settings_json.empty()) {
      auto settings = json::parse(s.training_settings_json, nullptr, false);
      if (settings.is_discarded()) settings = s.training_settings_json;  // not JSON: kept as text
      out["training"] = {{"examples", s.training_examples}, {"settings", settings}};
    }
  }
  if (s.content == "run") {
    out["run"] = {{"benchmark", s.benchmark}, {"seed", s.seed}, {"num_tasks", s.num_tasks},
                  {"tasks_completed", s.tasks_completed}, {"config", json::parse(s.config_json)}};
    json acc = json::array();
    for (const auto& row : s.accuracy) acc.push_back(nan_to_null(row));
    json times = json::array();
    for (const auto& t : s.timings) times.push_back({{"train_seconds", t[0]}, {"boundary_seconds", t[1]}, {"peak_mib", t[2]}});
    out["metrics"] = {{"task_incremental_accuracy", acc}, {"average_accuracy", s.average_accuracy}, {"per_task", times}};
  }
  if (s.has_posterior) {
    out["posterior"] = {{"source", s.posterior_source}, {"variance", stats_json(s.posterior_variance)},
                        {"abs_mean", stats_json(s.posterior_mean_abs)}};
  }
  json mem = json::array();
  for (const auto& m : s.memories) {
    json per_class = json::object();
    for (size_t i = 0; i < m.classes.size(); ++i) per_class[std::to_string(m.classes[i])] = m.per_class[i];
    mem.push_back({{"task", m.task}, {"size", m.size}, {"per_class", per_class}, {"scores", stats_json(m.scores)}});
  }
  out["memory"] = mem;
  if (!s.example_scores.empty()) {
    json tasks = json::array();
    for (const auto& t : s.example_scores) {
      json entry = {{"task", t.task}, {"examples", t.examples}, {"remembered", t.remembered},
                    {"posterior", t.posterior}, {"lambda_trace", stats_json(t.lambda_trace)}};
      if (t.logit_variance.count > 0) entry["logit_variance"] = stats_json(t.logit_variance);
      if (t.mpe.count > 0) entry["mpe"] = stats_json(t.mpe);
      tasks.push_back(entry);
    }
    out["example_scores"] = tasks;
  }
  if (s.has_sensitivities) {
    const auto& v = s.sensitivities;
    out["sensitivities"] = {{"form", v.form}, {"examples", v.examples}, {"nll_mean", v.nll},
                            {"loo_nll_mean", std::isfinite(v.loo_nll) ? json(v.loo_nll) : json()},
                            {"without_estimate", v.without_estimate},
                            {"glm_invalid", v.glm_invalid >= 0 ? json(v.glm_invalid) : json()}};
  }
  return out;
}

// An example-scores file: per task, how many examples were scored and remembered, and the
// range of each score.
void print_example_scores(const std::vector<kprior::checkpoint::ScoresSummary>& tasks) {
  const auto range = [](const Stats& st) {
    return st.count > 0 ? fmt::format("{:.3g}..{:.3g} (median {:.3g})", st.min, st.max, st.median) : std::string("-");
  };
  for (const auto& t : tasks) {
    fmt::print("scores of task {}: {} examples, {} remembered, posterior {}; Tr Λ {}", t.task + 1, t.examples,
               t.remembered, t.posterior, range(t.lambda_trace));
    if (t.logit_variance.count > 0) fmt::print("; logit variance {}", range(t.logit_variance));
    if (t.mpe.count > 0) fmt::print("; MPE {}", range(t.mpe));
    fmt::print("\n");
  }
}

// An mpe-influence sensitivities file: its form, size and mean NLLs.
void print_sensitivities(const kprior::checkpoint::SensitivitiesSummary& v) {
  fmt::print("sensitivities ({} form) of {} examples: mean NLL {:.4f}, estimated leave-one-out NLL {}", v.form,
             v.examples, v.nll, std::isfinite(v.loo_nll) ? fmt::format("{:.4f}", v.loo_nll) : std::string("none"));
  if (v.without_estimate > 0) fmt::print(" ({} examples without an estimate left out)", v.without_estimate);
  if (v.glm_invalid >= 0) fmt::print("; {} examples with no downdated posterior (GLM form)", v.glm_invalid);
  fmt::print("\n");
}

void print_summary(const kprior::checkpoint::Summary& s) {
  fmt::print("{}: kprior checkpoint v{} ({})\n", s.file, s.format_version, s.producer);
  if (s.content == "run") {
    const auto cfg = json::parse(s.config_json);
    fmt::print("run: {}, method {}, optimizer {}, seed {}; {} of {} tasks learned\n", s.benchmark,
               cfg.value("method", "?"), cfg.value("optimizer", "?"), s.seed, s.tasks_completed, s.num_tasks);
  }
  if (!s.architecture.empty()) print_model_file(s);
  if (s.parameter_tensors > 0) {
    fmt::print("model: {} parameters in {} tensors\n", s.parameters, s.parameter_tensors);
  } else if (!s.content.empty() && s.content != "run") {
    fmt::print("content: {} (no model)\n", s.content);  // e.g. mpe-influence's sensitivities file
  }
  print_example_scores(s.example_scores);
  if (s.has_sensitivities) print_sensitivities(s.sensitivities);
  if (s.has_posterior) {
    fmt::print("posterior ({}): variance min {:.3g} median {:.3g} max {:.3g}; |mean| median {:.3g} max {:.3g}\n",
               s.posterior_source, s.posterior_variance.min, s.posterior_variance.median,
               s.posterior_variance.max, s.posterior_mean_abs.median, s.posterior_mean_abs.max);
  }
  for (const auto& m : s.memories) {
    std::string classes;
    for (size_t i = 0; i < m.classes.size(); ++i) {
      classes += fmt::format("{}class {}: {}", i ? ", " : "", m.classes[i], m.per_class[i]);
    }
    // Tasks numbered from 1, as kprior-run prints them (the JSON keeps the 0-based task id).
    fmt::print("memory of task {}: {} examples ({}); scores {:.3g}..{:.3g}\n", m.task + 1, m.size, classes,
               m.scores.min, m.scores.max);
  }
  for (int64_t i = 0; i < s.tasks_completed && i < static_cast<int64_t>(s.accuracy.size()); ++i) {
    std::string row;
    for (int64_t j = 0; j <= i; ++j) row += fmt::format(" {:.1f}", 100 * s.accuracy[static_cast<size_t>(i)][static_cast<size_t>(j)]);
    const auto& t = s.timings.size() > static_cast<size_t>(i) ? s.timings[static_cast<size_t>(i)] : std::array<double, 3>{};
    fmt::print("after task {}: accuracy (%){}  | train {:.1f} s, boundary {:.2f} s, peak {:.0f} MiB\n", i + 1, row,
               t[0], t[1], t[2]);
  }
  if (s.tasks_completed > 0 && !s.accuracy.empty()) fmt::print("average accuracy {:.2f}%\n", 100 * s.average_accuracy);
}

// Remembered inputs as images: [M, C, H, W] as they are, flat square inputs as H = W.
torch::Tensor as_images(const torch::Tensor& inputs) {
  if (inputs.dim() == 4 || inputs.dim() == 3) return inputs;
  if (inputs.dim() == 2) {
    const auto side = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(inputs.size(1)))));
    if (side * side == inputs.size(1)) return inputs.view({inputs.size(0), side, side});
  }
  throw kprior::UsageError("--export-memory: the remembered inputs are not images (shape " +
                           c10::str(inputs.sizes()) + ")");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Show what a kprior checkpoint holds: the run, posterior statistics, the memory\n"
               "per task and class, accuracy and timings so far. --export-memory writes the\n"
               "remembered images of a task as a labelled PNG grid (label: class and score).",
               "kprior-inspect"};
  std::string file, png;
  bool as_json = false;
  int64_t task = -1, columns = 10, scale = 2;
  cli.add_option("FILE", file, "checkpoint (.h5) written by kprior-run or the library, kprior-run's\nexample_scores.h5, or mpe-influence's model.h5 or influence.h5")->required();
  cli.add_flag("--json", as_json, "print the summary as JSON");
  auto* o_task = cli.add_option("--export-memory", task, "task whose memory to draw, numbered from 1 as kprior-run\nprints them (needs --png)");
  auto* o_png = cli.add_option("--png", png, "PNG file for --export-memory");
  cli.add_option("--columns", columns, "images per row of the grid")->capture_default_str();
  cli.add_option("--scale", scale, "pixel magnification of the grid")->capture_default_str();
  o_task->needs(o_png);
  o_png->needs(o_task);

  cli.set_version_flag("--version", kprior::version());

  return kprior::app::run_guarded(cli, argc, argv, [&] {
    using namespace kprior;
    if (columns < 1) throw UsageError("--columns must be >= 1");
    if (scale < 1 || scale > 16) throw UsageError("--scale must be in 1..16");
    if (as_json && o_task->count() > 0) {
      throw UsageError("--json prints the summary; --export-memory writes a PNG instead: give one of them");
    }
    const auto tree = checkpoint::read(file);
    if (o_task->count() > 0) {
      const auto content = tree.has_attr("@content") ? tree.text("@content") : std::string();
      if (content != "run" && content != "memory") {
        throw FileError(file, "is not a kprior-run checkpoint (it holds " +
                                  (content.empty() ? std::string("no @content") : "'" + content + "'") +
                                  "): --export-memory draws a run's memory");
      }
      const auto memories = checkpoint::get_memories(tree);
      if (memories.empty()) throw UsageError("--export-memory: the checkpoint holds no memory (its method keeps none)");
      if (task < 1 || task > static_cast<int64_t>(memories.size())) {
        throw UsageError("--export-memory: the checkpoint has memories of tasks 1.." +
                         std::to_string(memories.size()) + ", not " + std::to_string(task));
      }
      const auto& m = memories[static_cast<size_t>(task - 1)];
      std::vector<std::string> labels;
      for (int64_t i = 0; i < m.size(); ++i) {
        labels.push_back(fmt::format("{} {:.2f}", m.labels[i].item<int64_t>(), m.scores[i].item<double>()));
      }
      // Images drawn as they were (the JPEG benchmarks' normalisation undone, true brightness
      // for MNIST and CIFAR); inputs of unknown range are stretched per image.
      auto images = as_images(m.inputs).to(torch::kFloat64);
      const auto stats = data::benchmark_image_stats(tree.has_attr("run@benchmark") ? tree.text("run@benchmark") : "");
      if (stats && images.dim() == 4 && images.size(1) == 3) data::denormalize_channels(images, *stats);
      image::write_png(png, image::labelled_grid(images, labels, {columns, scale, stats.has_value()}));
      fmt::print("wrote {} remembered images of task {} to {}\n", m.size(), task, png);
      return 0;
    }
    const auto summary = checkpoint::summarize(tree);
    if (as_json) {
      fmt::print("{}\n", summary_json(summary).dump(2));
    } else {
      print_summary(summary);
    }
    return 0;
  });
}
