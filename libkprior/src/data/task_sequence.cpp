#include "kprior/data/task_sequence.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "kprior/core/error.h"
#include "kprior/core/fingerprint.h"
#include "kprior/core/random.h"

namespace kprior::data {

std::vector<int64_t> TaskSequence::classes_seen(int64_t last) const {
  if (last < 0 || last >= size()) {
    throw UsageError("classes_seen: task " + std::to_string(last) + " is not in 0.." +
                     std::to_string(size() - 1));
  }
  std::set<int64_t> seen;
  for (int64_t t = 0; t <= last; ++t) seen.insert(tasks[t].classes.begin(), tasks[t].classes.end());
  return {seen.begin(), seen.end()};
}

namespace {

// Eight inputs values of every example, evenly spread over it (all of an example with fewer):
// enough to tell other images, or the same labels on other images, apart, at a cost that does
// not grow with the images' size.
torch::Tensor input_sample(const torch::Tensor& inputs) {
  if (inputs.numel() == 0) return inputs;
  const auto flat = inputs.reshape({inputs.size(0), -1});
  const int64_t d = flat.size(1), k = std::min<int64_t>(8, d);
  std::vector<int64_t> at;
  for (int64_t j = 0; j < k; ++j) at.push_back((2 * j + 1) * d / (2 * k));
  return flat.index_select(1, torch::tensor(at, torch::TensorOptions(torch::kLong).device(flat.device())));
}

}  // namespace

uint64_t sequence_fingerprint(const TaskSequence& seq) {
  Fingerprint f;
  f.add(seq.name).add(static_cast<uint64_t>(seq.size())).add(static_cast<uint64_t>(seq.num_outputs));
  for (const auto& name : seq.class_names) f.add(name);
  for (const auto& t : seq.tasks) {
    f.add(static_cast<uint64_t>(t.classes.size()));
    for (int64_t c : t.classes) f.add(static_cast<uint64_t>(c));
    f.add(static_cast<uint64_t>(t.train_size())).add(static_cast<uint64_t>(t.test.size()));
    f.add_integers(t.train.targets).add_integers(t.test.targets);
    // Inputs held as read (IDX, CIFAR, HDF5: exact on any machine); a JPEG tree's decoded and
    // resampled floats could differ in their last bits under another libjpeg or compiler, and
    // its files are already told apart by the class names, sizes and labels.
    if (!t.train_stream) f.add_float_bits(input_sample(t.train.inputs)).add_float_bits(input_sample(t.test.inputs));
  }
  return f.value();
}

Task make_split_task(const std::string& name, int64_t id, const std::vector<int64_t>& group, Dataset train,
                     Dataset test, int64_t num_outputs) {
  if (group.empty()) throw UsageError("split sequence '" + name + "': group " + std::to_string(id) + " is empty");
  std::string label;
  for (int64_t c : group) {
    if (c < 0 || c >= num_outputs) {
      throw UsageError("split sequence '" + name + "': class " + std::to_string(c) + " is outside [0, " +
                       std::to_string(num_outputs) + ")");
    }
    label += (label.empty() ? "" : "/") + std::to_string(c);
  }
  Task task{id, label, std::move(train), std::move(test), group};
  if (task.train.size() == 0) {
    throw UsageError("split sequence '" + name + "': no training examples of classes " + label);
  }
  if (task.test.size() == 0) {  // its accuracy would be NaN
    throw UsageError("split sequence '" + name + "': no test examples of classes " + label);
  }
  return task;
}

TaskSequence make_split_sequence(const std::string& name, const Dataset& train,
                                 const Dataset& test,
                                 const std::vector<std::vector<int64_t>>& groups,
                                 int64_t num_outputs, bool multi_head) {
  if (groups.empty()) throw UsageError("split sequence '" + name + "': no class groups given");
  std::set<int64_t> used;
  TaskSequence seq{name, {}, num_outputs, multi_head, {}};
  for (size_t t = 0; t < groups.size(); ++t) {
    for (int64_t c : groups[t]) {
      if (!used.insert(c).second) {
        throw UsageError("split sequence '" + name + "': class " + std::to_string(c) + " appears in two groups");
      }
    }
    seq.tasks.push_back(make_split_task(name, static_cast<int64_t>(t), groups[t], train.with_classes(groups[t]),
                                        test.with_classes(groups[t]), num_outputs));
  }
  return seq;
}

std::vector<std::vector<int64_t>> consecutive_groups(int64_t num_classes, int64_t per_task) {
  if (per_task <= 0 || num_classes % per_task != 0) {
    throw UsageError("consecutive_groups: " + std::to_string(num_classes) +
                     " classes cannot be split into groups of " + std::to_string(per_task));
  }
  std::vector<std::vector<int64_t>> groups;
  for (int64_t start = 0; start < num_classes; start += per_task) {
    std::vector<int64_t> g(static_cast<size_t>(per_task));
    for (int64_t k = 0; k < per_task; ++k) g[static_cast<size_t>(k)] = start + k;
    groups.push_back(std::move(g));
  }
  return groups;
}

namespace {

Dataset permute_features(const Dataset& d, const torch::Tensor& perm) {
  const auto shape = d.inputs.sizes().vec();
  auto flat = d.inputs.reshape({d.size(), -1}).index_select(1, perm.to(d.inputs.device()));
  return {flat.reshape(shape).contiguous(), d.targets};
}

}  // namespace

TaskSequence make_permuted_sequence(const std::string& name, const Dataset& train,
                                    const Dataset& test, int64_t num_tasks, uint64_t seed,
                                    int64_t num_outputs) {
  if (num_tasks <= 0) {
    throw UsageError("permuted sequence '" + name + "': number of tasks must be > 0, got " +
                     std::to_string(num_tasks));
  }
  const int64_t features = train.inputs.numel() / std::max<int64_t>(train.size(), 1);
  std::vector<int64_t> head(static_cast<size_t>(num_outputs));
  for (int64_t c = 0; c < num_outputs; ++c) head[static_cast<size_t>(c)] = c;
  TaskSequence seq{name, {}, num_outputs, false, {}};
  for (int64_t t = 0; t < num_tasks; ++t) {
    Task task{t, "perm-" + std::to_string(t), train, test, head};
    if (t > 0) {
      const auto p = random_permutation(features, mix_seed(seed, static_cast<uint64_t>(t)));
      const auto perm = torch::tensor(p, torch::kLong);
      task.train = permute_features(train, perm);
      task.test = permute_features(test, perm);
    }
    seq.tasks.push_back(std::move(task));
  }
  return seq;
}

torch::Tensor output_mask(const Task& task, int64_t num_outputs) {
  auto mask = torch::zeros({num_outputs}, torch::kBool);
  for (int64_t c : task.classes) {
    if (c < 0 || c >= num_outputs) {
      throw UsageError("output_mask: task '" + task.name + "' uses column " + std::to_string(c) +
                       " outside [0, " + std::to_string(num_outputs) + ")");
    }
    mask[c] = true;
  }
  return mask;
}

torch::Tensor head_columns(const std::vector<int64_t>& columns, const torch::Device& device) {
  // No copy to save on the CPU; a device without an index means "the current one", which
  // may change, so it is not cached.
  if (device.is_cpu() || !device.has_index()) return torch::tensor(columns, torch::kLong).to(device);
  // A process-wide cache: one small tensor per head and device (a run has a few dozen).
  static std::mutex mutex;
  static std::map<std::pair<std::string, std::vector<int64_t>>, torch::Tensor> cache;
  const std::lock_guard<std::mutex> lock(mutex);
  auto& cols = cache[{device.str(), columns}];
  if (!cols.defined()) cols = torch::tensor(columns, torch::kLong).to(device);
  return cols;
}

torch::Tensor head_logits(const Task& task, const torch::Tensor& logits) {
  return logits.index_select(1, head_columns(task.classes, logits.device()));
}

torch::Tensor head_targets(const Task& task, const torch::Tensor& global_targets) {
  if (task.classes.empty()) throw UsageError("head_targets: task '" + task.name + "' has no classes (an empty head)");
  // Lookup table from global class to position in the head (-1 where absent).
  const int64_t top = *std::max_element(task.classes.begin(), task.classes.end());
  const int64_t max_target = global_targets.numel() ? global_targets.max().item<int64_t>() : 0;
  auto table = torch::full({std::max(top, max_target) + 1}, -1, torch::kLong);
  for (size_t k = 0; k < task.classes.size(); ++k) table[task.classes[k]] = static_cast<int64_t>(k);
  auto local = table.to(global_targets.device()).index_select(0, global_targets.to(torch::kLong));
  if (local.numel() > 0 && local.min().item<int64_t>() < 0) {
    throw UsageError("head_targets: a target is not a class of task '" + task.name + "'");
  }
  return local;
}

}  // namespace kprior::data
