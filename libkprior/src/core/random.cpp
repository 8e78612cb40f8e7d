#include "kprior/core/random.h"

#include <array>
#include <cmath>
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

namespace {

// Ziggurat tables for the standard normal, 128 layers (Marsaglia & Tsang 2000, §3), for
// 25-bit signed integers (magnitudes below 2^24): k[i] = acceptance thresholds, w[i] = layer
// widths per unit of the integer, f[i] = density at the layer edges. Each 32-bit word gives
// one draw: 7 bits pick the layer, the other 25 bits the value, so the two are independent
// (the correlation Doornik, 2005, found in the original comes from sharing them).
struct ZigguratTables {
  static constexpr double kR = 3.442619855899;          // right edge of the base layer
  static constexpr double kArea = 9.91256303526217e-3;  // area of each layer
  static constexpr double kScale = 16777216.0;          // 2^24
  std::array<uint32_t, 128> k{};
  std::array<double, 128> w{};
  std::array<double, 128> f{};

  ZigguratTables() {
    double dn = kR, tn = dn;
    const double q = kArea / std::exp(-0.5 * dn * dn);
    k[0] = static_cast<uint32_t>((dn / q) * kScale);
    k[1] = 0;
    w[0] = q / kScale;
    w[127] = dn / kScale;
    f[0] = 1.0;
    f[127] = std::exp(-0.5 * dn * dn);
    for (int i = 126; i >= 1; --i) {
      dn = std::sqrt(-2.0 * std::log(kArea / dn + std::exp(-0.5 * dn * dn)));
      k[i + 1] = static_cast<uint32_t>((dn / tn) * kScale);
      tn = dn;
      f[i] = std::exp(-0.5 * dn * dn);
      w[i] = dn / kScale;
    }
  }
};

const ZigguratTables& ziggurat() {
  static const ZigguratTables tables;
  return tables;
}

// Uniform in (0, 1), never 0 (for the logarithms of the tail).
double open_uniform(SplitMix64& rng) {
  return (static_cast<double>(rng.next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

// Layer index and signed 25-bit value of one 32-bit word.
inline int layer_of(uint32_t word) { return static_cast<int>(word & 127); }
inline int32_t value_of(uint32_t word) { return static_cast<int32_t>(word) / 128; }
inline uint32_t magnitude(int32_t v) {
  return v < 0 ? static_cast<uint32_t>(-static_cast<int64_t>(v)) : static_cast<uint32_t>(v);
}

// The rare case: the word fell outside its layer's rectangle. Tail of the base layer
// (Marsaglia 1964), or the wedge under the density, else a fresh draw.
double ziggurat_slow(uint32_t word, SplitMix64& rng) {
  const ZigguratTables& z = ziggurat();
  for (;;) {
    const int index = layer_of(word);
    const int32_t hz = value_of(word);
    const double x = hz * z.w[index];
    if (magnitude(hz) < z.k[index]) return x;
    if (index == 0) {
      double tx, ty;
      do {
        tx = -std::log(open_uniform(rng)) / ZigguratTables::kR;
        ty = -std::log(open_uniform(rng));
      } while (ty + ty < tx * tx);
      return hz > 0 ? ZigguratTables::kR + tx : -ZigguratTables::kR - tx;
    }
    if (z.f[index] + open_uniform(rng) * (z.f[index - 1] - z.f[index]) < std::exp(-0.5 * x * x)) {
      return x;
    }
    word = static_cast<uint32_t>(rng.next());
  }
}

template <typename T>
void fill_normal(T* out, int64_t n, SplitMix64& rng) {
  const ZigguratTables& z = ziggurat();
  int64_t i = 0;
  while (i < n) {
    const uint64_t bits = rng.next();
    for (int half = 0; half < 2 && i < n; ++half, ++i) {
      const auto word = static_cast<uint32_t>(half == 0 ? bits : bits >> 32);
      const int index = layer_of(word);
      const int32_t hz = value_of(word);
      // Inside the rectangle: ~98.8% of draws, one compare and one multiply.
      out[i] = magnitude(hz) < z.k[index] ? static_cast<T>(hz * z.w[index])
                                          : static_cast<T>(ziggurat_slow(word, rng));
    }
  }
}

}  // namespace

double standard_normal(SplitMix64& rng) {
  double x;
  fill_normal(&x, 1, rng);
  return x;
}

void fill_standard_normal(float* out, int64_t n, SplitMix64& rng) { fill_normal(out, n, rng); }
void fill_standard_normal(double* out, int64_t n, SplitMix64& rng) { fill_normal(out, n, rng); }

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
