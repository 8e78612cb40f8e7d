#include "kprior/checkpoint/tree.h"

#include <torch/torch.h>

#include <set>

#include "kprior/core/error.h"

namespace kprior::checkpoint {

void Tree::put(const std::string& path, const torch::Tensor& t) {
  tensors_[path] = t.detach().to(torch::kCPU).contiguous().clone();
}

Tree Tree::to(const torch::Device& device) const {
  Tree out = *this;
  for (auto& [path, t] : out.tensors_) t = t.to(device);
  return out;
}

void Tree::put_attr(const std::string& path, Attribute value) { attrs_[path] = std::move(value); }

const torch::Tensor& Tree::tensor(const std::string& path) const {
  const auto it = tensors_.find(path);
  if (it == tensors_.end()) throw FileError(source_, "missing dataset '" + path + "'");
  return it->second;
}

const Attribute& Tree::attr(const std::string& path) const {
  const auto it = attrs_.find(path);
  if (it == attrs_.end()) throw FileError(source_, "missing attribute '" + path + "'");
  return it->second;
}

int64_t Tree::integer(const std::string& path) const {
  const auto& a = attr(path);
  if (!std::holds_alternative<int64_t>(a)) throw FileError(source_, "attribute '" + path + "' is not an integer");
  return std::get<int64_t>(a);
}

double Tree::real(const std::string& path) const {
  const auto& a = attr(path);
  if (std::holds_alternative<int64_t>(a)) return static_cast<double>(std::get<int64_t>(a));
  if (!std::holds_alternative<double>(a)) throw FileError(source_, "attribute '" + path + "' is not a number");
  return std::get<double>(a);
}

const std::string& Tree::text(const std::string& path) const {
  const auto& a = attr(path);
  if (!std::holds_alternative<std::string>(a)) throw FileError(source_, "attribute '" + path + "' is not text");
  return std::get<std::string>(a);
}

std::vector<torch::Tensor> Tree::list(const std::string& prefix) const {
  std::vector<torch::Tensor> out;
  for (size_t i = 0; has(prefix + "/" + std::to_string(i)); ++i) out.push_back(tensor(prefix + "/" + std::to_string(i)));
  return out;
}

void Tree::put_list(const std::string& prefix, const std::vector<torch::Tensor>& ts) {
  for (size_t i = 0; i < ts.size(); ++i) put(prefix + "/" + std::to_string(i), ts[i]);
}

std::vector<std::string> Tree::children(const std::string& group) const {
  const std::string prefix = group.empty() ? "" : group + "/";
  std::set<std::string> names;
  for (const auto& [path, t] : tensors_) {
    if (path.compare(0, prefix.size(), prefix) != 0) continue;
    const auto rest = path.substr(prefix.size());
    names.insert(rest.substr(0, rest.find('/')));
  }
  return {names.begin(), names.end()};
}

}  // namespace kprior::checkpoint
