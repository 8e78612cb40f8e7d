#include "kprior/data/image_transform.h"

#include <algorithm>
#include <cmath>

#include "kprior/core/error.h"

namespace kprior::data {
namespace {

double uniform(SplitMix64& rng) { return static_cast<double>(rng.next() >> 11) * 0x1.0p-53; }

}  // namespace

CropBox random_resized_crop(int64_t h, int64_t w, double min_scale, SplitMix64& rng) {
  const double area = static_cast<double>(h * w);
  const double log_lo = std::log(3.0 / 4.0), log_hi = std::log(4.0 / 3.0);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * (min_scale + (1.0 - min_scale) * uniform(rng));
    const double aspect = std::exp(log_lo + (log_hi - log_lo) * uniform(rng));
    const auto cw = static_cast<int64_t>(std::lround(std::sqrt(target * aspect)));
    const auto ch = static_cast<int64_t>(std::lround(std::sqrt(target / aspect)));
    if (cw > 0 && ch > 0 && cw <= w && ch <= h) {
      const auto y = static_cast<int64_t>(rng.below(static_cast<uint64_t>(h - ch + 1)));
      const auto x = static_cast<int64_t>(rng.below(static_cast<uint64_t>(w - cw + 1)));
      return {static_cast<double>(y), static_cast<double>(x), static_cast<double>(ch), static_cast<double>(cw), false};
    }
  }
  // Fallback: the whole image cropped to the nearest allowed aspect ratio, centred.
  const double ratio = static_cast<double>(w) / static_cast<double>(h);
  int64_t cw = w, ch = h;
  if (ratio < 3.0 / 4.0) ch = std::lround(static_cast<double>(w) / (3.0 / 4.0));
  if (ratio > 4.0 / 3.0) cw = std::lround(static_cast<double>(h) * (4.0 / 3.0));
  return {static_cast<double>((h - ch) / 2), static_cast<double>((w - cw) / 2), static_cast<double>(ch),
          static_cast<double>(cw), false};
}

CropBox center_crop(int64_t h, int64_t w, int64_t size, double resize_ratio) {
  const double shorter = static_cast<double>(std::min(h, w));
  const double resized = std::round(static_cast<double>(size) * resize_ratio);
  const double side = std::min(shorter, shorter * static_cast<double>(size) / resized);
  return {(static_cast<double>(h) - side) / 2, (static_cast<double>(w) - side) / 2, side, side, false};
}

void resample(const RgbImage& image, const CropBox& box, int64_t size, const ChannelStats& stats, float* out) {
  if (image.height <= 0 || image.width <= 0 || size <= 0) throw UsageError("resample: empty image or size");
  const double sy = box.height / static_cast<double>(size), sx = box.width / static_cast<double>(size);
  // Source coordinates and weights of each output column, computed once per image.
  std::vector<int64_t> x0(static_cast<size_t>(size)), x1(static_cast<size_t>(size));
  std::vector<float> wx(static_cast<size_t>(size));
  for (int64_t j = 0; j < size; ++j) {
    const int64_t jj = box.flip ? size - 1 - j : j;
    const double src = std::clamp(box.x + (static_cast<double>(jj) + 0.5) * sx - 0.5, 0.0,
                                  static_cast<double>(image.width - 1));
    const auto lo = static_cast<int64_t>(std::floor(src));
    x0[static_cast<size_t>(j)] = lo;
    x1[static_cast<size_t>(j)] = std::min(lo + 1, image.width - 1);
    wx[static_cast<size_t>(j)] = static_cast<float>(src - static_cast<double>(lo));
  }
  float scale[3], shift[3];
  for (int c = 0; c < 3; ++c) {
    scale[c] = 1.0f / (255.0f * stats.std[static_cast<size_t>(c)]);
    shift[c] = stats.mean[static_cast<size_t>(c)] / stats.std[static_cast<size_t>(c)];
  }
  // Separable: each source row the output needs is interpolated horizontally once, into
  // planar rows of floats (two kept: an enlarged crop reads the same rows for several output
  // rows), then each output row is one vectorizable blend of two of them per channel.
  const int64_t plane = size * size;
  std::vector<float> cache(static_cast<size_t>(2 * 3 * size));
  int64_t cached[2] = {-1, -1};
  auto horizontal = [&](int64_t y) -> const float* {
    for (int s = 0; s < 2; ++s) {
      if (cached[s] == y) return cache.data() + s * 3 * size;
    }
    const int s = cached[0] < cached[1] ? 0 : 1;  // replace the row above (rows only go down)
    cached[s] = y;
    float* dst = cache.data() + s * 3 * size;
    const uint8_t* row = image.pixels.data() + y * image.width * 3;
    for (int64_t j = 0; j < size; ++j) {
      const auto a = static_cast<size_t>(x0[static_cast<size_t>(j)] * 3), b = static_cast<size_t>(x1[static_cast<size_t>(j)] * 3);
      const float fx = wx[static_cast<size_t>(j)];
      for (int c = 0; c < 3; ++c) {
        dst[c * size + j] = static_cast<float>(row[a + c]) + fx * (static_cast<float>(row[b + c]) - static_cast<float>(row[a + c]));
      }
    }
    return dst;
  };
  for (int64_t i = 0; i < size; ++i) {
    const double src = std::clamp(box.y + (static_cast<double>(i) + 0.5) * sy - 0.5, 0.0,
                                  static_cast<double>(image.height - 1));
    const auto y0 = static_cast<int64_t>(std::floor(src));
    const int64_t y1 = std::min(y0 + 1, image.height - 1);
    const auto wy = static_cast<float>(src - static_cast<double>(y0));
    const float* top = horizontal(y0);
    const float* bottom = horizontal(y1);  // may evict neither: y1 is y0 or y0 + 1
    for (int c = 0; c < 3; ++c) {
      const float* t = top + c * size;
      const float* b = bottom + c * size;
      float* o = out + c * plane + i * size;
      for (int64_t j = 0; j < size; ++j) o[j] = (t[j] + wy * (b[j] - t[j])) * scale[c] - shift[c];
    }
  }
}

void transform_image(const RgbImage& image, const ImageTransform& t, SplitMix64& rng, float* out) {
  CropBox box;
  if (t.augment) {
    box = random_resized_crop(image.height, image.width, t.min_scale, rng);
    box.flip = (rng.next() >> 63) != 0;
  } else {
    box = center_crop(image.height, image.width, t.size, t.resize_ratio);
  }
  resample(image, box, t.size, t.stats, out);
}

}  // namespace kprior::data
