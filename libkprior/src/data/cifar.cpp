#include "kprior/data/cifar.h"

#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "kprior/core/error.h"

namespace kprior::data {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kPixels = 3 * 32 * 32;

std::vector<uint8_t> read_bytes(const std::string& path) {
  // A folder opens as a stream on Linux but has no size: caught here, not as a huge allocation.
  if (fs::is_directory(path)) throw FileError(path, "is a folder, not a CIFAR batch file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path, fs::exists(path) ? "cannot be opened" : "not found");
  in.seekg(0, std::ios::end);
  const auto end = in.tellg();
  if (end < 0) throw FileError(path, "cannot be read (no size)");
  const auto size = static_cast<size_t>(end);
  in.seekg(0);
  std::vector<uint8_t> bytes(size);
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size))) {
    throw FileError(path, "read failed");
  }
  return bytes;
}

// The first of `candidates` (relative to data_dir, "" = itself) that holds `marker`.
std::string find_dir(const std::string& data_dir, const std::vector<std::string>& candidates,
                     const std::vector<std::string>& markers, const std::string& what) {
  for (const auto& c : candidates) {
    const fs::path dir = c.empty() ? fs::path(data_dir) : fs::path(data_dir) / c;
    for (const auto& m : markers) {
      if (fs::exists(dir / m)) return dir.string();
    }
  }
  throw FileError((fs::path(data_dir) / candidates[1]).string(),
                  "not found: expected " + what + " there or in " + data_dir);
}

}  // namespace

CifarFormat cifar10_format() { return {1, 0, 10}; }

CifarFormat cifar100_format(bool fine) { return fine ? CifarFormat{2, 1, 100} : CifarFormat{2, 0, 20}; }

Dataset read_cifar_records(const std::vector<std::string>& files, const CifarFormat& format) {
  const int64_t record = format.record_bytes();
  std::vector<std::vector<uint8_t>> contents;
  int64_t total = 0;
  for (const auto& path : files) {
    auto bytes = read_bytes(path);
    const auto size = static_cast<int64_t>(bytes.size());
    if (size == 0 || size % record != 0) {
      throw FileError(path, std::to_string(size) + " bytes is not a whole number of " +
                                std::to_string(record) + "-byte CIFAR records (wrong file or cut short)");
    }
    for (int64_t r = 0; r < size / record; ++r) {
      const int label = bytes[static_cast<size_t>(r * record + format.label_index)];
      if (label >= format.num_classes) {
        throw FileError(path, "label " + std::to_string(label) + " of record " + std::to_string(r) +
                                  " is not below " + std::to_string(format.num_classes));
      }
    }
    total += size / record;
    contents.push_back(std::move(bytes));
  }
  auto pixels = torch::empty({total, 3, 32, 32}, torch::kUInt8);
  auto targets = torch::empty({total}, torch::kLong);
  auto* px = pixels.data_ptr<uint8_t>();
  auto* y = targets.data_ptr<int64_t>();
  int64_t n = 0;
  for (const auto& bytes : contents) {
    for (size_t off = 0; off < bytes.size(); off += static_cast<size_t>(record), ++n) {
      y[n] = bytes[off + static_cast<size_t>(format.label_index)];
      std::memcpy(px + n * kPixels, bytes.data() + off + format.label_bytes, kPixels);
    }
  }
  return {pixels.to(torch::kFloat32).div_(255.0), targets};
}

std::string find_cifar10_dir(const std::string& data_dir) {
  return find_dir(data_dir, {"", "cifar-10-batches-bin", "cifar10/cifar-10-batches-bin", "cifar10"},
                  {"data_batch_1.bin", "test_batch.bin"},
                  "the CIFAR-10 binary version (data_batch_1.bin .. data_batch_5.bin, test_batch.bin)");
}

std::string find_cifar100_dir(const std::string& data_dir) {
  return find_dir(data_dir, {"", "cifar-100-binary", "cifar100/cifar-100-binary", "cifar100"},
                  {"train.bin", "test.bin"}, "the CIFAR-100 binary version (train.bin, test.bin)");
}

Dataset load_cifar10(const std::string& dir, Split split, bool normalize) {
  std::vector<std::string> files;
  if (split == Split::Train) {
    for (int b = 1; b <= 5; ++b) files.push_back((fs::path(dir) / ("data_batch_" + std::to_string(b) + ".bin")).string());
  } else {
    files.push_back((fs::path(dir) / "test_batch.bin").string());
  }
  auto d = read_cifar_records(files, cifar10_format());
  if (normalize) normalize_channels(d.inputs, cifar10_stats());
  return d;
}

Dataset load_cifar100(const std::string& dir, Split split, bool fine, bool normalize) {
  const auto file = (fs::path(dir) / (split == Split::Train ? "train.bin" : "test.bin")).string();
  auto d = read_cifar_records({file}, cifar100_format(fine));
  if (normalize) normalize_channels(d.inputs, cifar100_stats());
  return d;
}

}  // namespace kprior::data
