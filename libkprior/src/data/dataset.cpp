#include "kprior/data/dataset.h"

#include <torch/torch.h>

#include <cstring>
#include <filesystem>

#include "kprior/core/error.h"

namespace kprior::data {

Dataset Dataset::subset(const torch::Tensor& indices) const {
  const auto idx = indices.to(torch::kLong).to(targets.device());
  return {inputs.index_select(0, idx), targets.index_select(0, idx)};
}

Dataset Dataset::with_classes(const std::vector<int64_t>& classes) const {
  auto keep = torch::zeros_like(targets, torch::kBool);
  for (int64_t c : classes) keep |= targets.eq(c);
  return subset(keep.nonzero().view(-1));
}

Dataset Dataset::to(const torch::Device& device) const {
  return {inputs.to(device), targets.to(device)};
}

namespace {

torch::ScalarType scalar_type(IdxType type) {
  switch (type) {
    case IdxType::UInt8: return torch::kUInt8;
    case IdxType::Int8: return torch::kInt8;
    case IdxType::Int16: return torch::kInt16;
    case IdxType::Int32: return torch::kInt32;
    case IdxType::Float32: return torch::kFloat32;
    case IdxType::Float64: return torch::kFloat64;
  }
  throw UsageError("unknown IDX element type");
}

IdxType idx_type(torch::ScalarType type) {
  switch (type) {
    case torch::kUInt8: return IdxType::UInt8;
    case torch::kInt8: return IdxType::Int8;
    case torch::kInt16: return IdxType::Int16;
    case torch::kInt32: return IdxType::Int32;
    case torch::kFloat32: return IdxType::Float32;
    case torch::kFloat64: return IdxType::Float64;
    default: throw UsageError(std::string("tensor_to_idx: dtype ") + c10::toString(type) +
                              " has no IDX element type");
  }
}

// The file in `dir` named `stem`, raw or gzip-compressed; FileError if neither exists.
std::string find_idx_file(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  for (const std::string& name : {stem, stem + ".gz"}) {
    const fs::path p = fs::path(dir) / name;
    if (fs::exists(p)) return p.string();
  }
  throw FileError((std::filesystem::path(dir) / stem).string(),
                  "not found (nor with .gz); run data/prepare.sh, or give the folder that holds it (the apps' --data-dir)");
}

}  // namespace

torch::Tensor idx_to_tensor(const IdxArray& array) {
  auto t = torch::empty(array.dims, torch::TensorOptions().dtype(scalar_type(array.type)));
  if (!array.bytes.empty()) std::memcpy(t.data_ptr(), array.bytes.data(), array.bytes.size());
  return t;
}

IdxArray tensor_to_idx(const torch::Tensor& tensor) {
  const auto t = tensor.cpu().contiguous();
  IdxArray array;
  array.type = idx_type(t.scalar_type());
  array.dims.assign(t.sizes().begin(), t.sizes().end());
  const size_t n = static_cast<size_t>(t.numel()) * t.element_size();
  array.bytes.resize(n);
  if (n > 0) std::memcpy(array.bytes.data(), t.data_ptr(), n);
  return array;
}

Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path,
                      int64_t num_classes) {
  const IdxArray images = read_idx(images_path);
  const IdxArray labels = read_idx(labels_path);
  if (images.type != IdxType::UInt8 || images.dims.size() != 3) {
    throw FileError(images_path, "expected uint8 images of rank 3 [N, rows, cols]");
  }
  if (labels.type != IdxType::UInt8 || labels.dims.size() != 1) {
    throw FileError(labels_path, "expected uint8 labels of rank 1 [N]");
  }
  if (images.dims[0] != labels.dims[0]) {
    throw FileError(labels_path, std::to_string(labels.dims[0]) + " labels for " +
                                     std::to_string(images.dims[0]) + " images in " +
                                     images_path);
  }
  for (size_t i = 0; i < labels.bytes.size(); ++i) {
    if (labels.bytes[i] >= num_classes) {
      throw FileError(labels_path, "label " + std::to_string(labels.bytes[i]) + " at item " +
                                       std::to_string(i) + " is not below " +
                                       std::to_string(num_classes));
    }
  }
  auto x = idx_to_tensor(images).to(torch::kFloat32).div_(255.0).unsqueeze(1);
  auto y = idx_to_tensor(labels).to(torch::kLong);
  return {x.contiguous(), y};
}

Dataset load_mnist_dir(const std::string& dir, Split split) {
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  // Resolved one after the other so a missing images file is reported before the labels.
  const std::string images = find_idx_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels = find_idx_file(dir, prefix + "-labels-idx1-ubyte");
  return load_idx_pair(images, labels);
}

}  // namespace kprior::data
