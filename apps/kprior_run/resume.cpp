#include "resume.h"

#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <tuple>

#include "kprior/checkpoint/file.h"
#include "kprior/core/error.h"
#include "kprior/train/run_checkpoint.h"

namespace kprior_run {

using nlohmann::json;

std::string checkpoint_path(const std::string& dir, int64_t seeds, uint64_t seed) {
  return dir + (seeds > 1 ? fmt::format("/checkpoint-seed{}.h5", seed) : std::string("/checkpoint.h5"));
}

void print_already_stopped(uint64_t seed, int64_t learned, int64_t num_tasks, int64_t stop_after) {
  fmt::print("seed {}: already stopped after task {} of {} (--stop-after-task {}); continue with a larger "
             "--stop-after-task, or none to finish the run\n",
             seed, learned, num_tasks, stop_after);
}

bool already_stopped(const std::string& dir, int64_t seeds, uint64_t seed, int64_t stop_after) {
  if (stop_after <= 0) return false;
  std::vector<std::tuple<uint64_t, int64_t, int64_t>> stops;  // seed, tasks learned, tasks
  for (int64_t s = 0; s < seeds; ++s) {
    const auto run_seed = seed + static_cast<uint64_t>(s);
    const auto path = checkpoint_path(dir, seeds, run_seed);
    if (!std::filesystem::exists(path)) return false;
    const auto tree = kprior::checkpoint::read(path);
    const auto learned = tree.integer("learner@tasks_observed");
    const auto num_tasks = kprior::train::read_run_info(tree).num_tasks;
    if (stop_after > learned || learned >= num_tasks) return false;
    stops.emplace_back(run_seed, learned, num_tasks);
  }
  for (const auto& [s, learned, num_tasks] : stops) print_already_stopped(s, learned, num_tasks, stop_after);
  fmt::print("continue with: kprior-run --resume {}\n", dir);
  return true;
}

namespace {

// Options a resumed run may change; everything else comes from its checkpoint.
// --jitter repairs a run whose next boundary found a singular FROMP kernel: every boundary
// from then on recomputes all memories' kernels with the new ε.
bool overridable(const std::string& name) {
  return name == "--threads" || name == "--data-dir" || name == "--stop-after-task" || name == "--resume" ||
         name == "--jitter";
}

}  // namespace

// `path` made absolute against the working directory (not normalised: "link/.." must keep
// meaning what it meant here).
std::string absolute_path(const std::string& path) {
  std::error_code ec;
  const auto p = std::filesystem::absolute(path, ec);
  return ec ? path : p.string();
}

// The options given on the command line, as a JSON array of [name, values...] (for resuming;
// the overridable ones are kept but may be given again).
std::string given_options(const CLI::App& cli, const std::string& data_dir) {
  json out = json::array();
  for (const auto* o : cli.get_options()) {
    const auto name = o->get_name();
    if (o->count() == 0 || name == "--resume" || name == "--stop-after-task" || name == "--config" ||
        name.rfind("--", 0) != 0) {
      continue;
    }
    json entry = json::array({name});
    for (const auto& v : o->results()) entry.push_back(name == "--data-dir" ? absolute_path(v) : v);
    out.push_back(entry);
  }
  // The data folder is saved absolute, given or not: a run resumed from another working
  // directory still finds it.
  if (cli.get_option("--data-dir")->count() == 0) out.push_back(json::array({"--data-dir", absolute_path(data_dir)}));
  return out.dump();
}

namespace {

// A checkpoint's config@json; a FileError naming the file when it is not JSON.
json parse_saved_config(const std::string& ckpt, const std::string& text) {
  try {
    return json::parse(text);
  } catch (const json::exception&) {
    throw kprior::FileError(ckpt, "attribute 'config@json' is not valid JSON");
  }
}

}  // namespace

// A resumed run must see the data it was trained on: another --data-dir with the same shapes
// would train on silently. Checkpoints from before the fingerprint was recorded are not checked.
void require_same_data(const std::string& ckpt, const std::string& saved_config, const json& config) {
  const json saved = parse_saved_config(ckpt, saved_config);
  if (!saved.is_object() || !saved.contains("data_fingerprint")) return;
  if (saved["data_fingerprint"] != config["data_fingerprint"]) {
    throw kprior::FileError(ckpt, "was trained on other data than --data-dir " + config["data_dir"].get<std::string>() +
                                      " holds (" + (saved.contains("data_dir") ? "it was trained from " +
                                                    saved["data_dir"].dump() + "; " : std::string()) +
                                      "the tasks' classes, sizes, labels or images, or the boundary sample, differ): resume "
                                      "with that data");
  }
}

// --resume DIR: the run's options are those saved in DIR's checkpoint, plus the overridable
// ones given now.
std::vector<std::string> resumed_arguments(const std::vector<std::string>& args, const std::string& dir) {
  if (std::filesystem::is_regular_file(dir)) {
    const auto folder = std::filesystem::path(dir).parent_path().string();
    throw kprior::UsageError("--resume takes the run's output folder (here " + (folder.empty() ? "." : folder) +
                             "), not a checkpoint file");
  }
  std::string path = dir + "/checkpoint.h5";
  if (!std::filesystem::exists(path)) {
    std::vector<std::string> found;
    if (std::filesystem::is_directory(dir)) {
      for (const auto& e : std::filesystem::directory_iterator(dir)) {
        const auto name = e.path().filename().string();
        if (name.rfind("checkpoint-seed", 0) == 0 && e.path().extension() == ".h5") found.push_back(e.path().string());
      }
    }
    if (found.empty()) throw kprior::FileError(dir, "no checkpoint.h5 or checkpoint-seed*.h5 to resume from");
    std::sort(found.begin(), found.end());
    path = found.front();
  }
  const auto tree = kprior::checkpoint::read(path);
  const auto info = kprior::train::read_run_info(tree);
  // ewc+fr+replay ignored --fisher and --ewc-lambda before its checkpoints recorded the method
  // (learner@regularizers): such a run continues with what it trained with, GGN and λ = 1.
  const bool pin_combined = !tree.has_attr("learner@regularizers") &&
                            info.config_json.find("ewc+fr+replay") != std::string::npos;
  std::vector<std::string> out{args.front()};
  json saved;
  try {
    saved = json::parse(info.arguments);
  } catch (const json::exception&) {
    throw kprior::FileError(path, "attribute 'config@arguments' is not valid JSON");
  }
  const auto given_now = [&](const std::string& name) {
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == name || args[i].rfind(name + "=", 0) == 0) return true;
    }
    return false;
  };
  for (const auto& entry : saved) {
    if (!entry.is_array() || entry.empty() || !entry[0].is_string()) {
      throw kprior::FileError(path, "attribute 'config@arguments' is not a list of options");
    }
    if (given_now(entry[0].get<std::string>())) continue;  // an overridable option given again
    if (pin_combined && (entry[0] == "--fisher" || entry[0] == "--ewc-lambda")) continue;
    if (entry.size() == 2) {
      // --name=value: also right for a flag, whose saved value ("true") may not follow as a word.
      out.push_back(entry[0].get<std::string>() + "=" + entry[1].get<std::string>());
      continue;
    }
    for (const auto& v : entry) out.push_back(v.get<std::string>());
  }
  // A run saved before --lr-schedule existed trained with a constant rate: it continues so
  // (its configuration has no "lr_schedule"; today's IVON default is cosine).
  const json config = parse_saved_config(path, info.config_json);
  if (config.is_object() && !config.contains("lr_schedule")) out.push_back("--lr-schedule=constant");
  // The layout is part of a run (IVON draws its noise in the weights' memory order): a run
  // continues with the layout it used, the one `auto` resolved to when it started, whatever
  // `auto` means today; runs saved before --memory-format kept contiguous weights.
  bool format_given = false;
  for (const auto& entry : saved) format_given = format_given || entry[0].get<std::string>() == "--memory-format";
  if (config.is_object() && !format_given) {
    out.push_back("--memory-format=" + (config.contains("memory_format") ? config["memory_format"].get<std::string>()
                                                                         : std::string("contiguous")));
  }
  // An MLP keeps the hidden widths it was built with, whatever today's default for the
  // benchmark is (the CNN benchmarks' MLP default changed from none to 256,256).
  bool hidden_given = false;
  for (const auto& entry : saved) hidden_given = hidden_given || entry[0].get<std::string>() == "--hidden";
  if (config.is_object() && !hidden_given && config.contains("mlp") && config["mlp"].is_array() &&
      config["mlp"].size() >= 2) {
    const auto& widths = config["mlp"];  // input, hidden..., outputs
    std::string hidden;
    for (size_t k = 1; k + 1 < widths.size(); ++k) hidden += (hidden.empty() ? "" : ",") + widths[k].dump();
    if (!hidden.empty()) out.push_back("--hidden=" + hidden);
    else out.push_back("--hidden=none");
  }
  if (pin_combined) {
    out.push_back("--fisher=ggn");
    out.push_back("--ewc-lambda=1");
  }
  // The gradient clip is part of a run too: it continues with the one it trained with, whatever
  // the default is today (before it applied to FROMP only, every Adam run clipped).
  bool clip_given = false;
  for (const auto& entry : saved) clip_given = clip_given || entry[0].get<std::string>() == "--clip";
  if (config.is_object() && !clip_given && config.contains("grad_clip") && config["grad_clip"].is_number()) {
    out.push_back("--clip=" + config["grad_clip"].dump());
  }
  // The JPEG trees' boundary sample is part of a run too (its memories were chosen from it): it
  // continues with the size it used, whatever the default is today. Runs saved before it was
  // recorded took the first 20 files of each class, which no option reproduces.
  bool sample_given = false;
  for (const auto& entry : saved) sample_given = sample_given || entry[0].get<std::string>() == "--boundary-sample";
  if (config.is_object() && !sample_given) {
    if (config.contains("boundary_sample") && config["boundary_sample"].is_number_integer()) {
      out.push_back("--boundary-sample=" + config["boundary_sample"].dump());
    } else if (config.contains("tasks") &&
               (config["tasks"] == "split-tinyimagenet" || config["tasks"] == "split-imagenet")) {
      fmt::print("note: this run was saved before the boundary sample was a random draw (it took each class's "
                 "first 20 files); its remaining tasks choose their memories from a random 20 per class\n");
    }
  }
  for (size_t i = 1; i < args.size(); ++i) {
    const auto name = args[i].substr(0, args[i].find('='));
    if (!overridable(name)) {
      if (args[i].rfind("--", 0) == 0) {
        throw kprior::UsageError("--resume takes the run's options from its checkpoint; " + name +
                                 " cannot be changed (only --threads, --data-dir, --stop-after-task, --jitter)");
      }
      continue;
    }
    out.push_back(args[i]);
    if (args[i].find('=') == std::string::npos && i + 1 < args.size()) out.push_back(args[++i]);
  }
  return out;
}

}  // namespace kprior_run
