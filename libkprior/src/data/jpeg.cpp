#include "kprior/data/jpeg.h"

// jpeglib.h needs FILE and size_t declared before it.
#include <algorithm>
#include <csetjmp>
#include <cstddef>
#include <cstdio>

#include <jpeglib.h>
#include <jerror.h>

#include "kprior/core/error.h"
#include "png_decode.h"

namespace kprior::data {
namespace {

// libjpeg reports fatal errors through error_exit, which must not return; the default one
// calls exit(). Ours keeps the message and jumps back to the caller, which throws. Only
// trivially destructible objects live between setjmp and longjmp in the callers.
struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void no_output(j_common_ptr) {}  // warnings (e.g. extraneous bytes) are not errors

// Warnings come through emit_message (level −1). A file that ends before its image does
// (JWRN_JPEG_EOF; libjpeg would fill the rest with grey) is an error, as in PIL ("image file
// is truncated"); other warnings (extraneous bytes, a corrupt segment libjpeg resynchronises
// past) are not, as they are not in PIL either.
void emit_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) error_exit(cinfo);
}

// Decodes into `out`; returns false with err.message set on failure. Plain C-style so that
// the longjmp crosses no destructor.
bool decode(const std::vector<uint8_t>& bytes, int64_t min_side, RgbImage& out, ErrorManager& err) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = error_exit;
  err.pub.output_message = no_output;
  err.pub.emit_message = emit_message;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, const_cast<unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  // Grey files (TinyImageNet and ImageNet hold some) decode as grey and are replicated below:
  // gray → RGB conversion is libjpeg-turbo's, not every libjpeg's. CMYK and YCCK files (a few
  // in ImageNet) decode to CMYK, which no libjpeg converts to RGB.
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  if (min_side > 0) {
    const auto shorter = std::min<int64_t>(cinfo.image_width, cinfo.image_height);
    for (unsigned denom : {8u, 4u, 2u}) {
      if (shorter / denom >= min_side) {
        cinfo.scale_num = 1;
        cinfo.scale_denom = denom;
        break;
      }
    }
  }
  jpeg_start_decompress(&cinfo);
  const int64_t h = cinfo.output_height, w = cinfo.output_width, comps = cinfo.output_components;
  out.height = h;
  out.width = w;
  out.pixels.assign(static_cast<size_t>(h * w * 3), 0);
  std::vector<uint8_t>& px = out.pixels;
  static thread_local std::vector<uint8_t> row;
  row.resize(static_cast<size_t>(w * comps));
  while (cinfo.output_scanline < cinfo.output_height) {
    const int64_t y = cinfo.output_scanline;
    JSAMPROW rows[1] = {row.data()};
    jpeg_read_scanlines(&cinfo, rows, 1);
    uint8_t* dst = px.data() + y * w * 3;
    if (comps == 3) {
      std::copy(row.begin(), row.end(), dst);
    } else if (comps == 4) {
      // Adobe CMYK is stored inverted (255 = no ink): R = C·K/255 on the stored values, which
      // is Pillow's CMYK → RGB, (255 − c)(255 − k)/255 on the ink values (torchvision's loader).
      for (int64_t x = 0; x < w; ++x) {
        const int k = row[static_cast<size_t>(4 * x + 3)];
        for (int c = 0; c < 3; ++c) dst[3 * x + c] = static_cast<uint8_t>(row[static_cast<size_t>(4 * x + c)] * k / 255);
      }
    } else {
      for (int64_t x = 0; x < w; ++x) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = row[static_cast<size_t>(x)];
    }
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

}  // namespace

namespace {

void decode_checked(const std::vector<uint8_t>& bytes, const std::string& name, int64_t min_side, RgbImage& out) {
  if (detail::is_png(bytes)) {  // a PNG in a JPEG tree (one in ImageNet): decoded, not refused
    detail::decode_png(bytes, name, out);
    return;
  }
  if (bytes.size() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8) {
    throw FileError(name, "not a JPEG file (no start-of-image marker)");
  }
  ErrorManager err{};
  if (!decode(bytes, min_side, out, err)) throw FileError(name, std::string("cannot decode JPEG: ") + err.message);
}

// The whole file into `bytes` (resized, so its capacity is reused), in one read.
void read_file(const std::string& path, std::vector<uint8_t>& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw FileError(path, "cannot be opened");
  bytes.clear();
  uint8_t chunk[1 << 16];
  size_t got = 0;
  while ((got = std::fread(chunk, 1, sizeof chunk, f)) > 0) bytes.insert(bytes.end(), chunk, chunk + got);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw FileError(path, "cannot be read");
}

}  // namespace

RgbImage decode_jpeg_bytes(const std::vector<uint8_t>& bytes, const std::string& name, int64_t min_side) {
  RgbImage image;
  decode_checked(bytes, name, min_side, image);
  return image;
}

void decode_jpeg_into(const std::string& path, int64_t min_side, RgbImage& out, std::vector<uint8_t>& file_buffer) {
  read_file(path, file_buffer);
  decode_checked(file_buffer, path, min_side, out);
}

RgbImage decode_jpeg(const std::string& path, int64_t min_side) {
  RgbImage image;
  std::vector<uint8_t> bytes;
  decode_jpeg_into(path, min_side, image, bytes);
  return image;
}

void write_jpeg(const std::string& path, const RgbImage& image, int quality) {
  if (image.height <= 0 || image.width <= 0 || image.pixels.size() != static_cast<size_t>(image.height * image.width * 3)) {
    throw UsageError("write_jpeg: the image's size and pixels disagree");
  }
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw FileError(path, "cannot be written");
  jpeg_compress_struct cinfo;
  ErrorManager err{};
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = error_exit;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    std::fclose(f);
    throw FileError(path, std::string("cannot encode JPEG: ") + err.message);
  }
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, f);
  cinfo.image_width = static_cast<JDIMENSION>(image.width);
  cinfo.image_height = static_cast<JDIMENSION>(image.height);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW rows[1] = {const_cast<uint8_t*>(image.pixels.data()) + cinfo.next_scanline * image.width * 3};
    jpeg_write_scanlines(&cinfo, rows, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  const bool ok = std::fclose(f) == 0;
  if (!ok) throw FileError(path, "cannot be written");
}

}  // namespace kprior::data
