#pragma once
// The standard ImageNet input pipeline (Szegedy et al., "Going deeper with convolutions",
// CVPR 2015; as torchvision implements it):
//   training  random-resized-crop (area fraction U[min_scale, 1] of the image, aspect ratio
//             log-uniform in [3/4, 4/3], 10 tries, then a centred crop of the clamped ratio),
//             resized to size x size, flipped horizontally with probability 1/2;
//   test      the shorter side resized to round(size · resize_ratio) (256 for 224), then the
//             centred size x size crop;
// then scaled to [0, 1] and normalised per channel. Resampling is bilinear with pixel
// centres at half-integers (align_corners = false), without antialiasing: large
// reductions are first done by libjpeg's DCT scaling (decode_jpeg's min_side).
#include <cstdint>

#include "kprior/core/random.h"
#include "kprior/data/channel_stats.h"
#include "kprior/data/jpeg.h"

namespace kprior::data {

struct ImageTransform {
  int64_t size = 224;             // output side, pixels
  bool augment = false;           // true: the training pipeline; false: the test pipeline
  double min_scale = 0.08;        // smallest crop area fraction (training)
  double resize_ratio = 256.0 / 224.0;  // test: shorter side / crop side before the crop
  ChannelStats stats = imagenet_stats();
};

/// A crop in source pixels (may be fractional) and whether to mirror it.
struct CropBox {
  double y = 0, x = 0, height = 0, width = 0;
  bool flip = false;
};

/// torchvision's RandomResizedCrop box for an image of height h and width w (flip not set).
CropBox random_resized_crop(int64_t h, int64_t w, double min_scale, SplitMix64& rng);
/// The test pipeline's box: the centred square that becomes the size x size crop after the
/// shorter side is resized to round(size · resize_ratio).
CropBox center_crop(int64_t h, int64_t w, int64_t size, double resize_ratio);

/// Resamples `box` of `image` bilinearly to size x size and writes it normalised, CHW, to
/// out[0 .. 3·size·size).
void resample(const RgbImage& image, const CropBox& box, int64_t size, const ChannelStats& stats, float* out);

/// The whole pipeline for one image: the box (augmenting draws from `rng`), then resample.
void transform_image(const RgbImage& image, const ImageTransform& t, SplitMix64& rng, float* out);

}  // namespace kprior::data
