#pragma once
// The named task sequences of kprior-run, built from the datasets' standard files.
#include <optional>
#include <string>
#include <vector>

#include "kprior/data/channel_stats.h"
#include "kprior/data/task_sequence.h"

namespace kprior::data {

/// Names accepted by make_benchmark.
std::vector<std::string> benchmark_names();

/// Throws the UsageError for a name that is not one of benchmark_names(), listing them.
[[noreturn]] void throw_unknown_benchmark(const std::string& name);

/// Builds a named benchmark:
///   split-mnist     5 tasks {0,1},{2,3},...,{8,9} of MNIST, one 2-way head per task;
///   permuted-mnist  10 tasks of MNIST under seeded pixel permutations (task 0 unpermuted),
///                   one shared 10-way head;
///   split-fashion   5 two-class tasks of Fashion-MNIST, as split-mnist;
///   split-cifar     CIFAR-10 (task 1, classes 0–9), then 5 tasks of 10 CIFAR-100 classes: the
///                   fine classes 0–49 in label order, as global classes 10–59; 60 outputs,
///                   6 heads of 10 (the published split CIFAR, METHODS.md §4);
///                   pixels scaled to [0, 1], not normalised (the published ToTensor());
///   split-cifar100  10 tasks of 10 consecutive CIFAR-100 fine classes, 100 outputs;
///   split-tinyimagenet  10 tasks of 20 consecutive classes (C/10 for a tree of C classes),
///                   64x64 images, C outputs;
///   split-imagenet  10 tasks of 100 classes (C/10), the class order shuffled with
///                   random_permutation(C, imagenet_class_order_seed()), images resized to
///                   256 and centre-cropped to 224; task-incremental heads as for the others.
///   split-h5        an HDF5 array file (array_file.h): `data_dir` is the file or a folder
///                   holding data.h5; tasks of @classes_per_task consecutive classes (default 2),
///                   one head each; without test arrays 20% of the examples are the test set
///                   (split with seed 0, whatever the run's seed).
/// The two JPEG trees (image_folder.h) train from the files: each task's Task::train_stream
/// is an ImageBatchLoader (random-resized-crop, flip, ImageNet statistics, decoded by all
/// cores, or BenchmarkOptions::threads). In memory, at the test pipeline's resolution: the val
/// set (Task::test) and a seeded random BenchmarkOptions::boundary_sample_per_class training
/// images of each class (Task::train, for memory selection and the other boundary work); a
/// UsageError when these would take more than 40% of the machine's memory. A tree needs a
/// multiple of 10 classes, at least 20.
/// MNIST family: `data_dir` either holds the IDX files itself (e.g. the full MNIST) or the
/// bundled layout (data_dir/mnist10k, data_dir/fashion-mnist). CIFAR: see find_cifar10_dir
/// and find_cifar100_dir (data_dir/cifar-10-batches-bin, data_dir/cifar-100-binary).
/// TinyImageNet / ImageNet: data_dir itself when it has train/, else
/// data_dir/tiny-imagenet-200 (or tinyimagenet), data_dir/imagenet (or ILSVRC2012).
/// Throws UsageError for an unknown name and FileError when the files are missing or invalid.
/// Training images per class kept in memory for the task boundary of the JPEG benchmarks,
/// by default.
constexpr int64_t kBoundarySamplePerClass = 20;

/// The seed of split-imagenet's class order: 1993 (fixed, so every run and seed sees the same
/// tasks; the order is our SplitMix64 shuffle, not the numpy order of iCaRL's seed 1993).
uint64_t imagenet_class_order_seed();

/// How to show a sequence's inputs as they were: x·std + mean gives intensities in [0, 1]
/// (ImageNet's statistics for the JPEG trees, which are normalised; mean 0 and std 1 for
/// MNIST-like and CIFAR pixels, already in [0, 1]); nullopt where the range is not known
/// (split-h5's arrays, an unknown name).
std::optional<ChannelStats> benchmark_image_stats(const std::string& name);

struct BenchmarkOptions {
  uint64_t seed = 0;  // permuted-MNIST's permutations
  /// JPEG trees: training images per class decoded into memory for the task boundary (memory
  /// selection, curvature, soft targets), a seeded random draw that does not depend on `seed`;
  /// 0 = all. The memory per task can be at most this times the task's classes.
  int64_t boundary_sample_per_class = kBoundarySamplePerClass;
  int threads = 0;  // JPEG trees: decoding threads (0 = all cores)
};

TaskSequence make_benchmark(const std::string& name, const std::string& data_dir, const BenchmarkOptions& options);
/// make_benchmark with the default options and `seed`.
TaskSequence make_benchmark(const std::string& name, const std::string& data_dir, uint64_t seed);

}  // namespace kprior::data
