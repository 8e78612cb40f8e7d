#pragma once
// A labelled dataset in memory, and loaders for the MNIST family of IDX files.
#include <torch/types.h>

#include <string>

#include "kprior/data/idx.h"

namespace kprior::data {

/// Inputs and integer class labels, as tensors on one device.
/// `inputs` is float32 [N, ...]; `targets` is int64 [N] with values in [0, num_classes).
struct Dataset {
  torch::Tensor inputs;
  torch::Tensor targets;

  int64_t size() const { return targets.defined() ? targets.size(0) : 0; }
  /// The examples at `indices` (int64 tensor or list), copied.
  Dataset subset(const torch::Tensor& indices) const;
  /// The examples whose label is one of `classes`, in their original order.
  Dataset with_classes(const std::vector<int64_t>& classes) const;
  /// Both tensors moved to `device`.
  Dataset to(const torch::Device& device) const;
};

enum class Split { Train, Test };

/// Converts an IDX array to a tensor of the matching dtype (uint8, int8, int16, int32,
/// float32, float64) and shape.
torch::Tensor idx_to_tensor(const IdxArray& array);
/// Converts a contiguous CPU tensor of a supported dtype to an IDX array.
IdxArray tensor_to_idx(const torch::Tensor& tensor);

/// Loads images [N, rows, cols] (uint8) and labels [N] (uint8) from two IDX files into a
/// Dataset with inputs float32 [N, 1, rows, cols] scaled to [0, 1]. Throws FileError when a file
/// is invalid, the counts differ, or a label is >= `num_classes`.
Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path,
                      int64_t num_classes = 10);

/// Loads the MNIST-layout files from `dir`: train-images-idx3-ubyte, train-labels-idx1-ubyte
/// (Split::Train) or t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (Split::Test), each raw or
/// with a .gz suffix. Works for MNIST, Fashion-MNIST and the bundled MNIST-10k of any size.
Dataset load_mnist_dir(const std::string& dir, Split split);

}  // namespace kprior::data
