#include "kprior/core/random.h"

#include <numeric>

#include "kprior/core/error.h"

namespace kprior {

__extension__ typedef unsigned __int128 uint128;  // GCC/Clang extension, for Lemire's method

uint64_t SplitMix64::next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t SplitMix64::below(uint64_t bound) {
  if (bound == 0) throw UsageError("SplitMix64::below: bound must be > 0");
  // Lemire, "Fast random integer generation in an interval", ACM TOMACS 2019.
  uint128 m = static_cast<uint128>(next()) * bound;
  auto low = static_cast<uint64_t>(m);
  if (low < bound) {
    const uint64_t threshold = (0 - bound) % bound;
    while (low < threshold) {
      m = static_cast<uint128>(next()) * bound;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

uint64_t mix_seed(uint64_t seed, uint64_t stream) {
  SplitMix64 rng(seed ^ (stream * 0xD1B54A32D192ED03ULL + 0x8CB92BA72F3D8DD7ULL));
  return rng.next();
}

void shuffle(std::vector<int64_t>& values, SplitMix64& rng) {
  for (size_t i = values.size(); i > 1; --i) {
    const auto j = static_cast<size_t>(rng.below(i));
    std::swap(values[i - 1], values[j]);
  }
}

std::vector<int64_t> random_permutation(int64_t n, uint64_t seed) {
  if (n < 0) throw UsageError("random_permutation: n must be >= 0, got " + std::to_string(n));
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  SplitMix64 rng(seed);
  shuffle(perm, rng);
  return perm;
}

}  // namespace kprior
