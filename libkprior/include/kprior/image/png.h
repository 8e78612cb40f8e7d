#pragma once
// Writing PNG files (libpng) from uint8 tensors.
#include <torch/types.h>

#include <string>

namespace kprior::image {

/// Writes `pixels` [H, W] (grey) or [H, W, 3] (RGB), uint8, as an 8-bit PNG. Throws
/// kprior::UsageError for another shape or type, kprior::FileError if the file cannot be written.
void write_png(const std::string& path, const torch::Tensor& pixels);

}  // namespace kprior::image
