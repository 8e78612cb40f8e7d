#include "kprior/data/array_file.h"

#include <H5Cpp.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "kprior/core/error.h"
#include "kprior/core/random.h"

namespace kprior::data {
namespace {

bool has_link(const H5::H5File& f, const std::string& name) {
  return H5Lexists(f.getId(), name.c_str(), H5P_DEFAULT) > 0;
}

// The array `name` as a tensor: inputs as float32 (uint8 scaled to [0, 1]), targets as int64.
torch::Tensor read_array(const H5::H5File& f, const std::string& path, const std::string& name, bool is_target) {
  if (f.childObjType(name) != H5O_TYPE_DATASET) {
    throw FileError(path, "'" + name + "' is not an array (an HDF5 dataset) but a group or a named type");
  }
  const auto ds = f.openDataSet(name);
  const auto space = ds.getSpace();
  const int rank = space.getSimpleExtentNdims();
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  if (rank > 0) space.getSimpleExtentDims(dims.data());
  if (is_target ? rank != 1 : rank < 2) {
    throw FileError(path, "array '" + name + "' has rank " + std::to_string(rank) + ", expected " +
                              (is_target ? "1 [N]" : ">= 2 [N, ...]"));
  }
  const std::vector<int64_t> sizes(dims.begin(), dims.end());
  const auto type = ds.getDataType();
  const auto cls = type.getClass();
  if (is_target) {
    if (cls != H5T_INTEGER) throw FileError(path, "array '" + name + "' must hold integers (class ids)");
    auto t = torch::empty(sizes, torch::kLong);
    if (t.numel() > 0) ds.read(t.data_ptr(), H5::PredType::NATIVE_INT64);  // HDF5 converts the width
    return t;
  }
  if (cls == H5T_INTEGER && type.getSize() == 1 && H5::IntType(type.getId()).getSign() == H5T_SGN_NONE) {
    auto t = torch::empty(sizes, torch::kUInt8);
    if (t.numel() > 0) ds.read(t.data_ptr(), H5::PredType::NATIVE_UINT8);
    return t.to(torch::kFloat32).div_(255.0);
  }
  if (cls == H5T_FLOAT) {
    auto t = torch::empty(sizes, torch::kFloat32);
    if (t.numel() > 0) ds.read(t.data_ptr(), H5::PredType::NATIVE_FLOAT);
    return t;
  }
  throw FileError(path, "array '" + name + "' must be float32, float64 or uint8");
}

Dataset read_pair(const H5::H5File& f, const std::string& path, const std::string& x, const std::string& y) {
  for (const auto& name : {x, y}) {
    if (!has_link(f, name)) throw FileError(path, "no array '" + name + "'");
  }
  Dataset d{read_array(f, path, x, false), read_array(f, path, y, true)};
  if (d.inputs.size(0) != d.targets.size(0)) {
    throw FileError(path, "'" + x + "' has " + std::to_string(d.inputs.size(0)) + " examples, '" + y + "' has " +
                              std::to_string(d.targets.size(0)) + " targets");
  }
  if (d.size() == 0) throw FileError(path, "array '" + x + "' is empty");
  if (d.targets.min().item<int64_t>() < 0) throw FileError(path, "array '" + y + "' has a negative class id");
  // A NaN or infinity would surface an epoch later as a diverged loss, blamed on the learning rate.
  const auto finite = torch::isfinite(d.inputs).flatten(1).all(1);
  if (!finite.all().item<bool>()) {
    const int64_t bad = (~finite).sum().item<int64_t>();
    throw FileError(path, "array '" + x + "' has non-finite values (NaN or infinity) in " + std::to_string(bad) +
                              (bad == 1 ? " example, at index " : " examples, the first at index ") +
                              std::to_string((~finite).nonzero()[0][0].item<int64_t>()));
  }
  return d;
}

// A positive integer root attribute, 0 when absent.
int64_t count_attribute(const H5::H5File& f, const std::string& path, const std::string& name) {
  const auto root = f.openGroup("/");
  if (!root.attrExists(name)) return 0;
  const auto a = root.openAttribute(name);
  if (a.getTypeClass() != H5T_INTEGER) throw FileError(path, "attribute '" + name + "' must be an integer");
  int64_t n = 0;
  a.read(H5::PredType::NATIVE_INT64, &n);
  if (n <= 0) throw FileError(path, "attribute '" + name + "' must be > 0");
  return n;
}

// Test positions: the first round(fraction * N) of a seeded permutation, then sorted.
std::pair<torch::Tensor, torch::Tensor> split_indices(int64_t n, double fraction, uint64_t seed) {
  const auto perm = random_permutation(n, seed);
  const auto n_test = static_cast<int64_t>(std::llround(fraction * static_cast<double>(n)));
  auto is_test = torch::zeros({n}, torch::kBool);
  for (int64_t i = 0; i < n_test; ++i) is_test[perm[static_cast<size_t>(i)]] = true;
  return {is_test.logical_not().nonzero().view(-1), is_test.nonzero().view(-1)};
}

}  // namespace

ArrayFile read_array_file(const std::string& path, double test_fraction, uint64_t seed) {
  if (!(test_fraction > 0 && test_fraction < 1)) {
    throw UsageError("array file: the test fraction must be in (0, 1), got " + std::to_string(test_fraction));
  }
  if (!std::filesystem::exists(path)) throw FileError(path, "not found");
  H5::Exception::dontPrint();
  ArrayFile out;
  try {
    if (!H5::H5File::isHdf5(path)) throw FileError(path, "not an HDF5 file");
    const H5::H5File f(path, H5F_ACC_RDONLY);
    const Dataset all = read_pair(f, path, "inputs", "targets");
    const bool has_x = has_link(f, "test_inputs"), has_y = has_link(f, "test_targets");
    if (has_x != has_y) throw FileError(path, "has only one of 'test_inputs' and 'test_targets'");
    if (has_x) {
      out.train = all;
      out.test = read_pair(f, path, "test_inputs", "test_targets");
      if (!out.test.inputs.sizes().slice(1).equals(all.inputs.sizes().slice(1))) {
        throw FileError(path, "'test_inputs' examples have another shape than 'inputs' examples");
      }
    } else {
      const auto [train, test] = split_indices(all.size(), test_fraction, seed);
      if (train.numel() == 0 || test.numel() == 0) {
        throw FileError(path, std::to_string(all.size()) + " examples leave an empty part at test fraction " +
                                  std::to_string(test_fraction));
      }
      out.train = all.subset(train);
      out.test = all.subset(test);
      out.split_from_inputs = true;
    }
    const int64_t largest = std::max(out.train.targets.max().item<int64_t>(), out.test.targets.max().item<int64_t>());
    out.num_classes = count_attribute(f, path, "num_classes");
    out.classes_per_task = count_attribute(f, path, "classes_per_task");
    if (largest == std::numeric_limits<int64_t>::max()) {  // largest + 1 would overflow
      throw FileError(path, "class id " + std::to_string(largest) + " is too large");
    }
    if (out.num_classes == 0) out.num_classes = largest + 1;
    if (largest >= out.num_classes) {
      throw FileError(path, "class id " + std::to_string(largest) + " is not below attribute num_classes = " +
                                std::to_string(out.num_classes));
    }
  } catch (const H5::Exception& e) {
    throw FileError(path, "unreadable HDF5 content: " + e.getDetailMsg());
  }
  return out;
}

}  // namespace kprior::data
