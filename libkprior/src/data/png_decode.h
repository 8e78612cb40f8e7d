#pragma once
// PNG files inside JPEG datasets: ImageNet's training set has a PNG named .JPEG
// (n02105855_2933.JPEG), which the JPEG decoder hands here (internal to data/).
#include <cstdint>
#include <string>
#include <vector>

#include "kprior/data/jpeg.h"

namespace kprior::data::detail {

/// True when `bytes` start with the PNG signature.
bool is_png(const std::vector<uint8_t>& bytes);
/// Decodes PNG bytes to 8-bit RGB in `out` (reusing its buffer): grayscale and palettes are
/// expanded and an alpha channel dropped (not composited), as PIL's convert("RGB") does for
/// torchvision's ImageFolder; 16-bit samples are taken as sRGB and rounded to 8 bits, and a
/// gAMA chunk other than sRGB's is applied (libpng's simplified API; PIL ignores gAMA).
/// Throws FileError naming `name`.
void decode_png(const std::vector<uint8_t>& bytes, const std::string& name, RgbImage& out);

}  // namespace kprior::data::detail
