#pragma once
// Tiny datasets written in the exact on-disk formats of the real ones (CIFAR binary, HDF5
// array files), for the [datasets] tests and the kprior-run end-to-end test. Pixel values
// follow a known formula so that tests can check every decoded value.
#include <H5Cpp.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <torch/types.h>

#include "kprior/data/jpeg.h"
#include "kprior/image/png.h"

namespace kprior::testing {

/// Byte i (0..3071, CHW) of record r of a fixture file with salt s.
inline uint8_t cifar_pixel(int64_t r, int64_t i, int64_t s = 0) {
  return static_cast<uint8_t>((r * 31 + i * 7 + s * 101) % 256);
}

/// Writes CIFAR records: `labels[r]` holds the label bytes of record r (1 or 2 of them).
inline void write_cifar_file(const std::string& path, const std::vector<std::vector<uint8_t>>& labels,
                             int64_t salt = 0) {
  std::ofstream out(path, std::ios::binary);
  for (size_t r = 0; r < labels.size(); ++r) {
    for (uint8_t b : labels[r]) out.put(static_cast<char>(b));
    for (int64_t i = 0; i < 3072; ++i) out.put(static_cast<char>(cifar_pixel(static_cast<int64_t>(r), i, salt)));
  }
}

/// A CIFAR-10 tree data_dir/cifar-10-batches-bin with `per_class` records of every class in
/// each of the five training batches (salts 1..5) and in test_batch.bin (salt 0).
inline void write_cifar10_fixture(const std::string& data_dir, int per_class) {
  const auto dir = std::filesystem::path(data_dir) / "cifar-10-batches-bin";
  std::filesystem::create_directories(dir);
  std::vector<std::vector<uint8_t>> labels;
  for (int k = 0; k < per_class; ++k) {
    for (uint8_t c = 0; c < 10; ++c) labels.push_back({c});
  }
  for (int b = 1; b <= 5; ++b) write_cifar_file((dir / ("data_batch_" + std::to_string(b) + ".bin")).string(), labels, b);
  write_cifar_file((dir / "test_batch.bin").string(), labels, 0);
}

/// A CIFAR-100 tree data_dir/cifar-100-binary: `per_class` records of each of the 100 fine
/// classes (coarse label = fine / 5) in train.bin (salt 1) and in test.bin (salt 0).
inline void write_cifar100_fixture(const std::string& data_dir, int per_class) {
  const auto dir = std::filesystem::path(data_dir) / "cifar-100-binary";
  std::filesystem::create_directories(dir);
  std::vector<std::vector<uint8_t>> labels;
  for (int k = 0; k < per_class; ++k) {
    for (uint8_t c = 0; c < 100; ++c) labels.push_back({static_cast<uint8_t>(c / 5), c});
  }
  write_cifar_file((dir / "train.bin").string(), labels, 1);
  write_cifar_file((dir / "test.bin").string(), labels, 0);
}

/// A CIFAR-100 tree data_dir/cifar-100-binary that a network can learn: every image of fine
/// class c is one colour of a 5x5x4 palette (R, G, B levels per c % 5, c / 5 % 5, c / 25) plus
/// independent uniform noise of ±24 per byte; `train`/`test` images per class. Checks that the
/// whole pipeline (reader, layout, model, training, evaluation) learns, not only that it runs.
inline void write_learnable_cifar100(const std::string& data_dir, int train, int test) {
  const auto dir = std::filesystem::path(data_dir) / "cifar-100-binary";
  std::filesystem::create_directories(dir);
  uint64_t state = 12345;
  auto noise = [&state] {  // a small LCG: the fixture is the same on every machine
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<int>((state >> 33) % 49) - 24;
  };
  auto write = [&](const std::string& name, int per_class) {
    std::ofstream out((dir / name).string(), std::ios::binary);
    for (int k = 0; k < per_class; ++k) {
      for (int c = 0; c < 100; ++c) {
        out.put(static_cast<char>(c / 5));
        out.put(static_cast<char>(c));
        const int level[3] = {30 + 48 * (c % 5), 30 + 48 * (c / 5 % 5), 40 + 60 * (c / 25)};
        for (int ch = 0; ch < 3; ++ch) {
          for (int i = 0; i < 1024; ++i) out.put(static_cast<char>(std::clamp(level[ch] + noise(), 0, 255)));
        }
      }
    }
  };
  write("train.bin", train);
  write("test.bin", test);
}

/// Writes `data` as an HDF5 dataset `name` of element type `type` and shape `dims`.
template <typename T>
void write_h5_array(H5::H5File& f, const std::string& name, const H5::PredType& type,
                    const std::vector<hsize_t>& dims, const std::vector<T>& data,
                    const H5::PredType& memory_type) {
  const H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
  auto ds = f.createDataSet(name, type, space);
  ds.write(data.data(), memory_type);
}

/// An HDF5 array file `path` for split-h5: `n` examples of `features` float32 features whose
/// first feature is the class (0..classes-1), targets int64, and the
/// root attribute classes_per_task.
inline void write_h5_fixture(const std::string& path, int64_t n, int64_t features, int64_t classes,
                             int64_t classes_per_task) {
  H5::H5File f(path, H5F_ACC_TRUNC);
  std::vector<float> x(static_cast<size_t>(n * features));
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    y[static_cast<size_t>(i)] = i % classes;
    for (int64_t j = 0; j < features; ++j) {
      // Other features: a fixed pseudo-random value in [0, 1), distinct for every example.
      const auto hash = (static_cast<uint64_t>(i) * 2654435761ULL + static_cast<uint64_t>(j) * 40503ULL) % 1000ULL;
      x[static_cast<size_t>(i * features + j)] = j == 0 ? static_cast<float>(i % classes) : static_cast<float>(hash) / 1000.0f;
    }
  }
  write_h5_array(f, "inputs", H5::PredType::IEEE_F32LE, {hsize_t(n), hsize_t(features)}, x, H5::PredType::NATIVE_FLOAT);
  write_h5_array(f, "targets", H5::PredType::STD_I64LE, {hsize_t(n)}, y, H5::PredType::NATIVE_INT64);
  f.openGroup("/").createAttribute("classes_per_task", H5::PredType::STD_I64LE, H5::DataSpace(H5S_SCALAR))
      .write(H5::PredType::NATIVE_INT64, &classes_per_task);
}

/// An h x w image of one colour.
inline data::RgbImage flat_image(int64_t h, int64_t w, uint8_t r, uint8_t g, uint8_t b) {
  data::RgbImage img{h, w, std::vector<uint8_t>(static_cast<size_t>(h * w * 3))};
  for (size_t k = 0; k < img.pixels.size(); k += 3) {
    img.pixels[k] = r;
    img.pixels[k + 1] = g;
    img.pixels[k + 2] = b;
  }
  return img;
}

/// A smooth image (JPEG keeps it closely): channel c at (y, x) = 40 + 3y + 2x + 30c, clamped.
inline data::RgbImage smooth_image(int64_t h, int64_t w) {
  data::RgbImage img{h, w, std::vector<uint8_t>(static_cast<size_t>(h * w * 3))};
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      for (int64_t c = 0; c < 3; ++c) {
        img.pixels[static_cast<size_t>((y * w + x) * 3 + c)] = static_cast<uint8_t>(std::min<int64_t>(255, 40 + 3 * y + 2 * x + 30 * c));
      }
    }
  }
  return img;
}

/// The gray level of the flat images of class c in write_jpeg_tree.
inline uint8_t tree_gray(int64_t c) { return static_cast<uint8_t>(20 + (c * 37) % 220); }

/// A class-per-folder JPEG tree root/train/<class>/, root/val/<class>/ with `train` and `val`
/// flat gray images (tree_gray(c), side x side) per class; class folders are named
/// n000<c>... so that their sorted order is c. As in ImageNet, one training "JPEG" (class 0's
/// second, when there is one) is a PNG file; flat gray decodes to the same pixels either way. `tiny_layout` writes TinyImageNet's original
/// layout instead: train/<wnid>/images/*.JPEG, val/images/*.JPEG + val/val_annotations.txt.
inline std::vector<std::string> write_jpeg_tree(const std::string& root, int classes, int train, int val,
                                                bool tiny_layout, int64_t side = 8) {
  namespace fs = std::filesystem;
  std::vector<std::string> names;
  std::ofstream annotations;
  if (tiny_layout) {
    fs::create_directories(fs::path(root) / "val" / "images");
    annotations.open((fs::path(root) / "val" / "val_annotations.txt").string());
  }
  int val_count = 0;
  for (int c = 0; c < classes; ++c) {
    char name[16];
    std::snprintf(name, sizeof name, "n%08d", c);
    names.emplace_back(name);
    const auto g = tree_gray(c);
    const auto image = flat_image(side, side, g, g, g);
    const auto train_dir = fs::path(root) / "train" / name / (tiny_layout ? "images" : "");
    fs::create_directories(train_dir);
    for (int k = 0; k < train; ++k) {
      const auto file = (train_dir / (std::string(name) + "_" + std::to_string(k) + ".JPEG")).string();
      if (c == 0 && k == 1) {
        image::write_png(file, torch::full({side, side, 3}, static_cast<int64_t>(g), torch::kUInt8));
      } else {
        data::write_jpeg(file, image);
      }
    }
    for (int k = 0; k < val; ++k) {
      if (tiny_layout) {
        const auto file = "val_" + std::to_string(val_count++) + ".JPEG";
        data::write_jpeg((fs::path(root) / "val" / "images" / file).string(), image);
        annotations << file << "\t" << name << "\t0\t0\t7\t7\n";
      } else {
        fs::create_directories(fs::path(root) / "val" / name);
        data::write_jpeg((fs::path(root) / "val" / name / ("v" + std::to_string(k) + ".jpg")).string(), image);
      }
    }
  }
  return names;
}

}  // namespace kprior::testing
