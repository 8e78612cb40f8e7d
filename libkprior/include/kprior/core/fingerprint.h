#pragma once
// FNV-1a (64 bits): a cheap fingerprint of data, to tell "the same data" from "other data"
// when a saved file is used again (mpe-influence's model file, kprior-run's resume). Not a
// cryptographic hash: it detects mistakes, not tampering.
#include <torch/types.h>

#include <cstdint>
#include <string>

namespace kprior {

class Fingerprint {
 public:
  /// Adds the 8 bytes of `x`, least significant first.
  Fingerprint& add(uint64_t x) {
    for (int b = 0; b < 8; ++b, x >>= 8) {
      h_ ^= x & 0xff;
      h_ *= 1099511628211ull;
    }
    return *this;
  }
  /// Adds the length, then the bytes of `s`.
  Fingerprint& add(const std::string& s) {
    add(static_cast<uint64_t>(s.size()));
    for (unsigned char c : s) {
      h_ ^= c;
      h_ *= 1099511628211ull;
    }
    return *this;
  }
  /// Adds every element of an integer tensor (any device), as int64, in order.
  Fingerprint& add_integers(const torch::Tensor& values);
  /// Adds the bit patterns of every element of a floating-point tensor (any device) as float32,
  /// in order: exact, so equal values give equal fingerprints on any machine.
  Fingerprint& add_float_bits(const torch::Tensor& values);
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = 14695981039346656037ull;
};

}  // namespace kprior
