#pragma once
// The IDX file format of MNIST and Fashion-MNIST (LeCun et al., http://yann.lecun.com/exdb/mnist/):
// a 4-byte magic number (0, 0, element type, rank), `rank` big-endian uint32 dimensions, then
// the elements in row-major order, big-endian. Files may be gzip-compressed.
//
// LibTorch's own MNIST reader hard-codes 60,000/10,000 items; this one reads any size and
// validates everything it reads. It is independent of LibTorch (see dataset.h for tensors).
#include <cstdint>
#include <string>
#include <vector>

namespace kprior::data {

/// Element types of the IDX format (the third magic byte).
enum class IdxType : uint8_t {
  UInt8 = 0x08,
  Int8 = 0x09,
  Int16 = 0x0B,
  Int32 = 0x0C,
  Float32 = 0x0D,
  Float64 = 0x0E,
};

/// Size in bytes of one element of `type`.
size_t idx_element_size(IdxType type);

/// An IDX array held in memory. `bytes` holds the elements in host byte order.
struct IdxArray {
  IdxType type = IdxType::UInt8;
  std::vector<int64_t> dims;
  std::vector<uint8_t> bytes;

  /// Product of the dimensions.
  int64_t numel() const;
};

/// Reads an IDX file, raw or gzip-compressed (detected from the content, not the name).
/// Throws kprior::FileError naming the file and the problem for: a missing file, a gzip
/// stream that is corrupt or cut short, a wrong magic number, an unknown element type, a
/// rank of 0, fewer data bytes than the dimensions promise (truncated) or more (trailing).
IdxArray read_idx(const std::string& path);

/// Writes `array` as an IDX file; gzip-compressed when `gzip` is true. Throws FileError when
/// the file cannot be written and UsageError when dims and bytes disagree.
void write_idx(const std::string& path, const IdxArray& array, bool gzip);

}  // namespace kprior::data
