#pragma once
// The in-memory image of a kprior checkpoint file: named tensors (HDF5 datasets) and named
// text/integer/real attributes, addressed by slash-separated paths ("memory/task_0/inputs";
// an attribute is "group@name", "@name" on the root). The schema of the paths is
// docs/checkpoint-format.md; this type knows nothing of it. Reading an absent object throws
// kprior::FileError naming the file and the object.
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace kprior::checkpoint {

using Attribute = std::variant<int64_t, double, std::string>;

class Tree {
 public:
  explicit Tree(std::string source = "(memory)") : source_(std::move(source)) {}

  void put(const std::string& path, const torch::Tensor& t);  // stored contiguous, on CPU
  void put_attr(const std::string& path, Attribute value);

  bool has(const std::string& path) const { return tensors_.count(path) > 0; }
  bool has_attr(const std::string& path) const { return attrs_.count(path) > 0; }
  const torch::Tensor& tensor(const std::string& path) const;
  int64_t integer(const std::string& path) const;
  double real(const std::string& path) const;
  const std::string& text(const std::string& path) const;
  /// The tensors "prefix/0", "prefix/1", ... in order (stops at the first absent index).
  std::vector<torch::Tensor> list(const std::string& prefix) const;
  void put_list(const std::string& prefix, const std::vector<torch::Tensor>& ts);
  /// Direct children names (datasets and groups) of `group` ("" for the root), sorted.
  std::vector<std::string> children(const std::string& group) const;

  const std::map<std::string, torch::Tensor>& tensors() const { return tensors_; }
  const std::map<std::string, Attribute>& attributes() const { return attrs_; }
  /// A copy whose tensors live on `device` (trees hold them on the CPU; a learner on a GPU
  /// reads its state through such a copy so that memories and regularizer state land there).
  Tree to(const torch::Device& device) const;
  /// The file this tree was read from (for error messages).
  const std::string& source() const { return source_; }

 private:
  const Attribute& attr(const std::string& path) const;
  std::string source_;
  std::map<std::string, torch::Tensor> tensors_;
  std::map<std::string, Attribute> attrs_;
};

}  // namespace kprior::checkpoint
