#pragma once
// JPEG files through libjpeg's jpeglib.h API (libjpeg-turbo on Debian, libjpeg on the GPU
// machine): decoding to 8-bit RGB, with libjpeg's DCT-domain downscaling when the caller
// needs fewer pixels, and encoding (for test fixtures and tools).
#include <cstdint>
#include <string>
#include <vector>

namespace kprior::data {

/// An 8-bit RGB image, rows top first, pixels interleaved (HWC).
struct RgbImage {
  int64_t height = 0;
  int64_t width = 0;
  std::vector<uint8_t> pixels;  // height * width * 3
  uint8_t at(int64_t y, int64_t x, int64_t c) const {
    return pixels[static_cast<size_t>((y * width + x) * 3 + c)];
  }
};

/// Decodes a JPEG file to RGB. Grayscale images are replicated to three channels; CMYK/YCCK
/// images (a few in ImageNet) are converted assuming Adobe's inverted CMYK. A PNG file (one
/// of ImageNet's training "JPEGs" is a PNG) is decoded as PNG, alpha dropped, at full size. With
/// `min_side` > 0, libjpeg scales by 1/2, 1/4 or 1/8 during decoding when the shorter side
/// stays >= min_side (much faster for large photos). Throws FileError naming the file for a
/// missing file or data libjpeg cannot decode (with libjpeg's message).
RgbImage decode_jpeg(const std::string& path, int64_t min_side = 0);
/// As decode_jpeg, from bytes in memory; `name` is used in error messages.
RgbImage decode_jpeg_bytes(const std::vector<uint8_t>& bytes, const std::string& name, int64_t min_side = 0);
/// As decode_jpeg, into `out`, reusing its pixel buffer and `file_buffer` (for the file's
/// bytes): a loader thread decoding image after image allocates nothing once they are large
/// enough (a fresh 0.5 MB buffer per photo costs page faults).
void decode_jpeg_into(const std::string& path, int64_t min_side, RgbImage& out, std::vector<uint8_t>& file_buffer);

/// Writes `image` as a baseline JPEG of `quality` (1–100). Throws FileError when the file
/// cannot be written.
void write_jpeg(const std::string& path, const RgbImage& image, int quality = 95);

}  // namespace kprior::data
