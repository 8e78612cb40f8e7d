#include "kprior/checkpoint/objects.h"

#include <torch/torch.h>

#include <cstring>
#include <string>

#include "kprior/checkpoint/file.h"
#include "kprior/core/error.h"

namespace kprior::checkpoint {

void put_memory(Tree& tree, const std::string& group, const memory::TaskMemory& m) {
  tree.put(group + "/inputs", m.inputs);
  tree.put(group + "/labels", m.labels.to(torch::kInt64));
  tree.put(group + "/scores", m.scores);
  tree.put(group + "/old_probs", m.old_probs);
  tree.put(group + "/classes", torch::tensor(m.classes, torch::kInt64));
  if (m.indices.defined()) tree.put(group + "/indices", m.indices.to(torch::kInt64));
  tree.put_attr(group + "@task", m.task);
}

void put_lines(Tree& tree, const std::string& path, const std::vector<std::string>& lines) {
  std::string text;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find('\n') != std::string::npos) throw UsageError("put_lines: a line holds a line break");
    text += (i ? "\n" : "") + lines[i];
  }
  auto bytes = torch::empty({static_cast<int64_t>(text.size())}, torch::kUInt8);
  std::memcpy(bytes.data_ptr<uint8_t>(), text.data(), text.size());
  tree.put(path, bytes);
}

std::vector<std::string> get_lines(const Tree& tree, const std::string& path) {
  const auto& t = tree.tensor(path);
  if (t.scalar_type() != torch::kUInt8 || t.dim() != 1) throw FileError(tree.source(), "'" + path + "' is not uint8 text");
  const auto c = t.contiguous();
  const std::string text(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), static_cast<size_t>(c.numel()));
  std::vector<std::string> lines;
  if (text.empty()) return lines;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    lines.push_back(text.substr(start, end - start));
  }
  lines.push_back(text.substr(start));
  return lines;
}

void put_example_scores(Tree& tree, const std::string& group, const memory::ExampleScores& s,
                        const torch::Tensor& memory_indices, const std::vector<std::string>& files) {
  tree.put(group + "/labels", s.labels.to(torch::kInt64));
  tree.put(group + "/lambda_trace", s.lambda_trace);
  if (s.logit_variance.defined()) tree.put(group + "/logit_variance", s.logit_variance);
  if (s.mpe.defined()) tree.put(group + "/mpe", s.mpe);
  if (memory_indices.defined()) tree.put(group + "/memory_indices", memory_indices.to(torch::kInt64));
  if (!files.empty()) {
    if (static_cast<int64_t>(files.size()) != s.labels.size(0)) {
      throw UsageError("put_example_scores: " + std::to_string(files.size()) + " files for " +
                       std::to_string(s.labels.size(0)) + " examples");
    }
    put_lines(tree, group + "/files", files);
  }
}

memory::TaskMemory get_memory(const Tree& tree, const std::string& group) {
  memory::TaskMemory m;
  m.task = tree.integer(group + "@task");
  m.inputs = tree.tensor(group + "/inputs");
  m.labels = tree.tensor(group + "/labels");
  m.scores = tree.tensor(group + "/scores");
  m.old_probs = tree.tensor(group + "/old_probs");
  const auto classes = tree.tensor(group + "/classes");
  const auto bad = [&](const std::string& what) { return FileError(tree.source(), "memory '" + group + "': " + what); };
  if (classes.scalar_type() != torch::kInt64 || classes.dim() != 1 || classes.numel() == 0) throw bad("classes must be a non-empty int64 vector");
  for (int64_t i = 0; i < classes.numel(); ++i) m.classes.push_back(classes[i].item<int64_t>());
  const int64_t n = m.labels.dim() == 1 ? m.labels.size(0) : -1;
  if (m.labels.scalar_type() != torch::kInt64 || n < 0) throw bad("labels must be an int64 vector");
  if (m.inputs.dim() < 1 || m.inputs.size(0) != n) throw bad("inputs and labels differ in length");
  if (m.scores.dim() != 1 || m.scores.size(0) != n) throw bad("scores and labels differ in length");
  if (m.old_probs.dim() != 2 || m.old_probs.size(0) != n || m.old_probs.size(1) != classes.numel()) {
    throw bad("old_probs must be [labels, classes]");
  }
  if (n > 0 && !torch::isin(m.labels, classes).all().item<bool>()) throw bad("a label is not one of the task's classes");
  if (tree.has(group + "/indices")) {
    m.indices = tree.tensor(group + "/indices");
    if (m.indices.scalar_type() != torch::kInt64 || m.indices.dim() != 1 || m.indices.size(0) != n ||
        (n > 0 && m.indices.min().item<int64_t>() < 0)) {
      throw bad("indices must be non-negative int64, one per label");
    }
  }
  return m;
}

std::vector<memory::TaskMemory> get_memories(const Tree& tree) {
  std::vector<memory::TaskMemory> out;
  for (size_t s = 0; tree.has_attr("memory/task_" + std::to_string(s) + "@task"); ++s) {
    out.push_back(get_memory(tree, "memory/task_" + std::to_string(s)));
  }
  return out;
}

void save_memory(const memory::TaskMemory& m, const std::string& path) {
  Tree tree;
  tree.put_attr("@content", std::string("memory"));
  put_memory(tree, "memory/task_" + std::to_string(m.task), m);
  write(tree, path);
}

memory::TaskMemory load_memory(const std::string& path) {
  const auto tree = read(path);
  const auto names = tree.children("memory");
  if (names.size() != 1) throw FileError(path, "expected exactly one memory under 'memory', found " + std::to_string(names.size()));
  return get_memory(tree, "memory/" + names[0]);
}

void put_module(Tree& tree, const torch::nn::Module& module) {
  for (const auto& p : module.named_parameters()) tree.put("model/" + p.key(), p.value());
  for (const auto& b : module.named_buffers()) tree.put("model_buffers/" + b.key(), b.value());
}

namespace {
void copy_checked(const Tree& tree, const std::string& path, torch::Tensor into) {
  if (!tree.has(path)) throw FileError(tree.source(), "missing '" + path + "' (a different model?)");
  const auto& from = tree.tensor(path);
  if (!from.sizes().equals(into.sizes()) || from.scalar_type() != into.scalar_type()) {
    throw FileError(tree.source(), "'" + path + "' does not fit the model (shape or type differs)");
  }
  torch::NoGradGuard no_grad;
  into.copy_(from);
}
}  // namespace

void get_module(const Tree& tree, torch::nn::Module& module) {
  for (auto& p : module.named_parameters()) copy_checked(tree, "model/" + p.key(), p.value());
  for (auto& b : module.named_buffers()) copy_checked(tree, "model_buffers/" + b.key(), b.value());
}

void put_posterior(Tree& tree, const std::string& group, const posterior::DiagonalGaussian& q) {
  tree.put_list(group + "/mean", q.mean());
  tree.put_list(group + "/variance", q.variance());
  tree.put_attr(group + "@source", q.source());
}

posterior::DiagonalGaussian get_posterior(const Tree& tree, const std::string& group) {
  auto mean = tree.list(group + "/mean");
  auto variance = tree.list(group + "/variance");
  if (mean.empty()) throw FileError(tree.source(), "missing dataset '" + group + "/mean/0'");
  try {
    return {std::move(mean), std::move(variance), tree.text(group + "@source")};
  } catch (const UsageError& e) {
    throw FileError(tree.source(), "posterior '" + group + "': " + e.what());
  }
}

posterior::DiagonalGaussian read_posterior(const std::string& checkpoint_path) {
  return get_posterior(read(checkpoint_path), "posterior");
}

}  // namespace kprior::checkpoint
