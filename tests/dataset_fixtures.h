#pragma once
// Tiny datasets written in the exact on-disk formats of the real ones (CIFAR binary, HDF5
// array files), for the [datasets] tests and the kprior-run end-to-end test. Pixel values
// follow a known formula so that tests can check every decoded value.
#include <H5Cpp.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

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

/// Writes `data` as an HDF5 dataset `name` of element type `type` and shape `dims`.
template <typename T>
void write_h5_array(H5::H5File& f, const std::string& name, const H5::PredType& type,
                    const std::vector<hsize_t>& dims, const std::vector<T>& data,
                    const H5::PredType& memory_type) {
  const H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
  auto ds = f.createDataSet(name, type, space);
  ds.write(data.data(), memory_type);
}

}  // namespace kprior::testing
