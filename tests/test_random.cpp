// The portable random generator and the Ziggurat normal sampler.
#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "catch.h"
#include "kprior/core/parse.h"
#include "kprior/core/random.h"

TEST_CASE("parse_integer takes exactly one integer of the type's range", "[core]") {
  CHECK(kprior::parse_integer<int64_t>("42") == 42);
  CHECK(kprior::parse_integer<int64_t>("-7") == -7);
  CHECK(kprior::parse_integer<uint64_t>("18446744073709551615") == 18446744073709551615ull);
  for (const char* bad : {"", "+5", " 5", "5 ", "5x", "0x10", "1.0", "99999999999999999999"}) {
    CAPTURE(bad);
    CHECK_FALSE(kprior::parse_integer<int64_t>(bad).has_value());
  }
  CHECK_FALSE(kprior::parse_integer<uint64_t>("-1").has_value());
  CHECK_FALSE(kprior::parse_integer<uint64_t>("18446744073709551616").has_value());
}

TEST_CASE("SplitMix64 matches the reference generator", "[core]") {
  // First outputs of Vigna's splitmix64.c with state 0 (published reference values).
  kprior::SplitMix64 rng(0);
  CHECK(rng.next() == 0xE220A8397B1DCDAFULL);
  CHECK(rng.next() == 0x6E789E6AA1B965F4ULL);
  CHECK(rng.next() == 0x06C45D188009454FULL);
  // below() stays in range and hits every value of a small range.
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto v = rng.below(7);
    REQUIRE(v < 7);
    seen.insert(v);
  }
  CHECK(seen.size() == 7);
}

TEST_CASE("Ziggurat normals have the standard normal distribution", "[core]") {
  kprior::SplitMix64 rng(2024);
  const int n = 1000000;
  std::vector<double> x(n);
  double sum = 0, sum2 = 0, sum4 = 0;
  for (auto& v : x) {
    v = kprior::standard_normal(rng);
    sum += v;
    sum2 += v * v;
    sum4 += v * v * v * v;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  // Standard errors: mean 1e-3, variance 1.4e-3, fourth moment 9.8e-3; allow 5 of each.
  CHECK(std::abs(mean) < 5e-3);
  CHECK(std::abs(var - 1.0) < 7e-3);
  CHECK(std::abs(sum4 / n - 3.0) < 0.05);
  // Empirical CDF against Φ(t) = erfc(−t/√2)/2; the standard error is at most 5e-4.
  for (double t : {-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0}) {
    const double below = static_cast<double>(std::count_if(x.begin(), x.end(),
                                                           [t](double v) { return v < t; }));
    CAPTURE(t);
    CHECK(std::abs(below / n - 0.5 * std::erfc(-t / std::sqrt(2.0))) < 2.5e-3);
  }
  // The tail beyond the base layer's edge R = 3.4426 comes from a separate algorithm:
  // P(|x| > 3.5) = 4.653e-4, i.e. 465 ± 22 of 1e6.
  const auto tail = std::count_if(x.begin(), x.end(), [](double v) { return std::abs(v) > 3.5; });
  CHECK(std::abs(static_cast<double>(tail) - 465.3) < 5 * 21.6);
}
