#pragma once
// A small portable random generator for data-level choices (splits, permutations, shuffles).
// Unlike std::shuffle or torch::randperm, its output is fixed by this file alone, so the same
// seed gives the same split on every compiler, standard library and LibTorch version — which
// is what lets data/SHA256SUMS pin the bundled files.
#include <cstdint>
#include <vector>

namespace kprior {

/// SplitMix64 (Steele, Lea & Flood, OOPSLA 2014): 64-bit state, full period 2^64.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();
  /// Uniform integer in [0, bound) without modulo bias (Lemire's rejection method). bound > 0.
  uint64_t below(uint64_t bound);

 private:
  uint64_t state_;
};

/// Mixes two values into one seed (for per-epoch or per-task streams derived from one seed).
uint64_t mix_seed(uint64_t seed, uint64_t stream);

/// Standard normal draws by the Ziggurat method (Marsaglia & Tsang, "The Ziggurat Method for
/// Generating Random Variables", J. Stat. Softw. 5(8), 2000; 128 layers). Each 32-bit half of
/// a 64-bit draw yields one value, its layer index and value taken from separate bits (the fix
/// of Doornik 2005 for the original's correlation); values have 24 bits of resolution per
/// layer, finer than float32. About 2 ns per value; used for IVON's weight noise.
double standard_normal(SplitMix64& rng);
/// Fills out[0..n) with standard normal draws.
void fill_standard_normal(float* out, int64_t n, SplitMix64& rng);
void fill_standard_normal(double* out, int64_t n, SplitMix64& rng);

/// Fisher–Yates shuffle of `values` in place, driven by `rng`.
void shuffle(std::vector<int64_t>& values, SplitMix64& rng);

/// The permutation 0..n-1 shuffled with a generator seeded by `seed`.
std::vector<int64_t> random_permutation(int64_t n, uint64_t seed);

}  // namespace kprior
