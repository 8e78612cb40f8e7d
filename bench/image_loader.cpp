// Issue #8: can JPEG loading keep a GPU fed? Decodes and augments ImageNet-sized JPEGs
// (random-resized-crop to 224, flip, normalise: the training pipeline of split-imagenet) with
// kprior::data::load_images, on 1 thread and on all threads, and compares the images/s with
// the rate a GPU trains at (--target, default 11,601 img/s: ResNet-18 bf16 on an H100, README).
//
//   bench_image_loader [--images N] [--threads T] [--target IMG_PER_S] [--width W --height H]
//
// The images are written first (smooth colour fields with noise, 500x375 by default — the
// median ImageNet photo — quality 90) into a temporary folder, so the bench needs no dataset.
#include <fmt/core.h>
#include <ftw.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "kprior/core/random.h"
#include "kprior/core/threads.h"
#include "kprior/data/image_loader.h"
#include "kprior/data/jpeg.h"

namespace {

using Clock = std::chrono::steady_clock;

// A photo-like image: low-frequency colour gradients plus pixel noise, so that the JPEG
// carries a realistic amount of detail (a flat image decodes unrealistically fast).
kprior::data::RgbImage synthetic_photo(int64_t width, int64_t height, uint64_t seed) {
  kprior::SplitMix64 rng(seed);
  kprior::data::RgbImage im;
  im.width = width;
  im.height = height;
  im.pixels.resize(static_cast<size_t>(width * height * 3));
  const double fx = 1 + static_cast<double>(rng.below(5)), fy = 1 + static_cast<double>(rng.below(5));
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      for (int64_t c = 0; c < 3; ++c) {
        const double base = 128 + 90 * std::sin(fx * x / width * 6.28 + c) * std::cos(fy * y / height * 6.28 - c);
        const double noise = static_cast<double>(rng.below(41)) - 20;
        im.pixels[static_cast<size_t>((y * width + x) * 3 + c)] =
            static_cast<uint8_t>(std::clamp(base + noise, 0.0, 255.0));
      }
    }
  }
  return im;
}

double images_per_second(const std::vector<std::string>& files, int threads, int rounds) {
  std::vector<int64_t> indices(files.size());
  std::iota(indices.begin(), indices.end(), 0);
  kprior::data::ImageTransform t;
  t.augment = true;  // the training pipeline
  double best = 0;
  for (int r = 0; r < rounds; ++r) {
    const auto start = Clock::now();
    const auto batch = kprior::data::load_images(files, indices, t, static_cast<uint64_t>(r), threads);
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    best = std::max(best, static_cast<double>(batch.size(0)) / secs);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t images = 256, width = 500, height = 375;
  int threads = 0, rounds = 3;
  double target = 11601;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--images")) images = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--target")) target = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--width")) width = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--height")) height = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
  }
  const int all = threads > 0 ? threads : kprior::hardware_threads();
  // A fresh folder under the system's temporary directory ($TMPDIR honoured).
  std::string dir_template = (std::filesystem::temp_directory_path() / "kprior-bench-jpeg-XXXXXX").string();
  if (::mkdtemp(dir_template.data()) == nullptr) {
    std::fprintf(stderr, "bench_image_loader: cannot create %s\n", dir_template.c_str());
    return 1;
  }
  const std::string dir = dir_template;
  std::vector<std::string> files;
  uint64_t bytes = 0;
  for (int64_t i = 0; i < images; ++i) {
    files.push_back(fmt::format("{}/{:05d}.JPEG", dir, i));
    kprior::data::write_jpeg(files.back(), synthetic_photo(width, height, static_cast<uint64_t>(i)), 90);
    FILE* f = std::fopen(files.back().c_str(), "rb");
    std::fseek(f, 0, SEEK_END);
    bytes += static_cast<uint64_t>(std::ftell(f));
    std::fclose(f);
  }
  fmt::print("bench_image_loader: {} JPEGs of {}x{} ({:.0f} KiB each), random-resized-crop 224 + flip + "
             "normalise, best of {} rounds\n", images, width, height, static_cast<double>(bytes) / 1024.0 / static_cast<double>(images), rounds);
  const double one = images_per_second(files, 1, rounds);
  const double many = images_per_second(files, all, rounds);
  fmt::print("  1 thread:    {:8.0f} images/s\n", one);
  fmt::print("  {} threads: {:8.0f} images/s ({:.2f}x one thread)\n", all, many, many / one);
  fmt::print("  to feed {:.0f} images/s: {:.1f} cores at this per-core rate\n", target, target / one);
  nftw(dir.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
       FTW_DEPTH | FTW_PHYS);
  return 0;
}
