#pragma once
// The named task sequences of kprior-run, built from MNIST-layout IDX files.
#include <string>
#include <vector>

#include "kprior/data/task_sequence.h"

namespace kprior::data {

/// Names accepted by make_benchmark.
std::vector<std::string> benchmark_names();

/// Builds a named benchmark:
///   split-mnist     5 tasks {0,1},{2,3},...,{8,9} of MNIST, one 2-way head per task;
///   permuted-mnist  10 tasks of MNIST under seeded pixel permutations (task 0 unpermuted),
///                   one shared 10-way head;
///   split-fashion   5 two-class tasks of Fashion-MNIST, as split-mnist.
/// `data_dir` either holds the IDX files itself (e.g. the full MNIST) or the bundled layout
/// (data_dir/mnist10k, data_dir/fashion-mnist). Throws UsageError for an unknown name and
/// FileError when the files are missing or invalid.
TaskSequence make_benchmark(const std::string& name, const std::string& data_dir, uint64_t seed);

}  // namespace kprior::data
