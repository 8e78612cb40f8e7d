#include "kprior/image/png.h"

#include <png.h>
#include <torch/torch.h>

#include <cstdio>
#include <memory>

#include "kprior/core/error.h"

namespace kprior::image {

void write_png(const std::string& path, const torch::Tensor& pixels) {
  if (pixels.scalar_type() != torch::kUInt8 || !(pixels.dim() == 2 || (pixels.dim() == 3 && pixels.size(2) == 3))) {
    throw UsageError("write_png: expected uint8 [H, W] or [H, W, 3] pixels");
  }
  if (pixels.size(0) < 1 || pixels.size(1) < 1) throw UsageError("write_png: empty image");
  const auto data = pixels.contiguous().cpu();
  const auto height = static_cast<png_uint_32>(data.size(0)), width = static_cast<png_uint_32>(data.size(1));
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!file) throw FileError(path, "cannot open for writing");
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (png == nullptr || info == nullptr) {
    png_destroy_write_struct(&png, &info);
    throw Error("write_png: libpng could not start");
  }
  if (setjmp(png_jmpbuf(png))) {  // libpng reports errors by longjmp
    png_destroy_write_struct(&png, &info);
    throw FileError(path, "libpng failed to write the image");
  }
  // Locals set after setjmp, so a longjmp cannot clobber them.
  const int channels = data.dim() == 2 ? 1 : 3;
  png_init_io(png, file.get());
  png_set_IHDR(png, info, width, height, 8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  const auto* base = data.data_ptr<uint8_t>();
  for (png_uint_32 y = 0; y < height; ++y) {
    png_write_row(png, const_cast<png_bytep>(base + static_cast<size_t>(y) * width * static_cast<size_t>(channels)));
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  if (std::fflush(file.get()) != 0) throw FileError(path, "could not write the image");
}

}  // namespace kprior::image
