#pragma once
// Labelled image grids: the remembered examples of a task, the most influential training
// images — anything a user should look at rather than read.
#include <torch/types.h>

#include <string>
#include <vector>

namespace kprior::image {

struct GridOptions {
  int64_t columns = 10;  ///< tiles per row
  int64_t scale = 2;     ///< each image pixel becomes scale × scale pixels
  /// True: values are intensities in [0, 1], drawn as they are (clamped), so colours and
  /// brightness stay true; false: each image is stretched to 0..255 (any range, e.g. features).
  bool unit_range = false;
};

/// Tiles `images` ([N, H, W] or [N, 1, H, W] grey, or [N, 3, H, W] colour; any real type,
/// values rescaled per image to 0..255 unless options.unit_range) into one RGB image [rows·(h+label), columns·w, 3],
/// each tile with its `labels[i]` written above it (digits, letters, '.', '-', ' ').
/// `labels` is empty or has N entries.
torch::Tensor labelled_grid(const torch::Tensor& images, const std::vector<std::string>& labels,
                            GridOptions options = {});

}  // namespace kprior::image
