#pragma once
// Custom data as arrays in an HDF5 file (images or precomputed features), the format for
// anything that is not one of the named benchmarks:
//   inputs        float32, float64 or uint8, [N, ...] (uint8 is scaled to [0, 1]; floats are
//                 used as they are, so normalise features before writing them)
//   targets       any integer type, [N], class ids >= 0
//   test_inputs   optional, [M, ...] with the same per-example shape as inputs
//   test_targets  optional, [M] (both test arrays or neither)
//   @num_classes  optional integer root attribute; default 1 + the largest class id
//   @classes_per_task  optional integer root attribute, for kprior-run's split-h5 (default 2)
// Without test arrays the examples are split at random: a fraction `test_fraction` of them
// (rounded to the nearest whole example) becomes the test set, chosen with
// random_permutation(N, seed) (core/random.h, the same split everywhere); both parts keep
// the file's order. Write such a file from Python with h5py:
//   f.create_dataset("inputs", data=x.astype("float32")); f.create_dataset("targets", data=y)
#include <cstdint>
#include <string>

#include "kprior/data/dataset.h"

namespace kprior::data {

struct ArrayFile {
  Dataset train;
  Dataset test;
  int64_t num_classes = 0;
  bool split_from_inputs = false;  // true when the test set was split off `inputs`
  int64_t classes_per_task = 0;    // the @classes_per_task attribute, 0 when absent
};

/// Reads an array file. Throws FileError naming the file and the array for: a file that is
/// not HDF5, a missing or mistyped array, mismatched lengths or per-example shapes, only one
/// of the test arrays, a negative class id or one >= @num_classes, or a split that leaves
/// either part empty. UsageError when test_fraction is not in (0, 1).
ArrayFile read_array_file(const std::string& path, double test_fraction = 0.2, uint64_t seed = 0);

}  // namespace kprior::data
