#include "png_decode.h"

#include <png.h>

#include <cstring>

#include "kprior/core/error.h"

namespace kprior::data::detail {

bool is_png(const std::vector<uint8_t>& bytes) {
  static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return bytes.size() >= 8 && std::memcmp(bytes.data(), signature, 8) == 0;
}

void decode_png(const std::vector<uint8_t>& bytes, const std::string& name, RgbImage& out) {
  // libpng's simplified API: it converts any colour type and bit depth to the format asked.
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (png_image_begin_read_from_memory(&image, bytes.data(), bytes.size()) == 0) {
    throw FileError(name, std::string("cannot decode PNG: ") + image.message);
  }
  // RGBA, not RGB: asked for RGB, libpng would composite the alpha onto a background.
  image.format = PNG_FORMAT_RGBA;
  // 16-bit samples without a gAMA/sRGB chunk are taken as sRGB-encoded (libpng would assume
  // linear and gamma-encode them, brightening mid-tones: 0.5 would become ~0.73).
  image.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
  std::vector<uint8_t> rgba(PNG_IMAGE_SIZE(image));
  if (png_image_finish_read(&image, nullptr, rgba.data(), 0, nullptr) == 0) {
    const std::string message = image.message;
    png_image_free(&image);
    throw FileError(name, "cannot decode PNG: " + message);
  }
  out.height = image.height;
  out.width = image.width;
  const size_t pixels = static_cast<size_t>(out.height * out.width);
  out.pixels.resize(pixels * 3);
  for (size_t i = 0; i < pixels; ++i) {
    out.pixels[3 * i] = rgba[4 * i];
    out.pixels[3 * i + 1] = rgba[4 * i + 1];
    out.pixels[3 * i + 2] = rgba[4 * i + 2];
  }
}

}  // namespace kprior::data::detail
