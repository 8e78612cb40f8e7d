#include "kprior/data/benchmarks.h"

#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>

#include "kprior/core/error.h"
#include "kprior/core/random.h"
#include "kprior/data/array_file.h"
#include "kprior/data/cifar.h"
#include "kprior/data/dataset.h"
#include "kprior/data/image_loader.h"

namespace kprior::data {
namespace {

// The folder with the IDX files: data_dir itself if it has them, else data_dir/<bundled>.
std::string resolve_dir(const std::string& data_dir, const std::string& bundled) {
  namespace fs = std::filesystem;
  for (const char* name : {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"}) {
    if (fs::exists(fs::path(data_dir) / name)) return data_dir;
  }
  return (fs::path(data_dir) / bundled).string();
}

// CIFAR-10 (classes 0–9) followed by CIFAR-100's fine classes 0..49 as classes 10..59.
std::pair<Dataset, Dataset> cifar10_then_cifar100(const std::string& data_dir) {
  const auto dir10 = find_cifar10_dir(data_dir);
  const auto dir100 = find_cifar100_dir(data_dir);
  std::vector<int64_t> first50(50);
  for (int64_t c = 0; c < 50; ++c) first50[static_cast<size_t>(c)] = c;
  auto join = [&](Split split) {
    // Pixels scaled to [0, 1] and not normalised, as the published run's ToTensor().
    const Dataset a = load_cifar10(dir10, split, /*normalize=*/false);
    const Dataset b = load_cifar100(dir100, split, /*fine=*/true, /*normalize=*/false).with_classes(first50);
    return Dataset{torch::cat({a.inputs, b.inputs}), torch::cat({a.targets, b.targets + 10})};
  };
  Dataset train = join(Split::Train);
  return {std::move(train), join(Split::Test)};
}

// The root of a JPEG tree (holding train/ and val/): data_dir itself or data_dir/<name>.
std::string find_image_root(const std::string& data_dir, const std::vector<std::string>& names) {
  namespace fs = std::filesystem;
  if (fs::is_directory(fs::path(data_dir) / "train")) return data_dir;
  for (const auto& n : names) {
    if (fs::is_directory(fs::path(data_dir) / n / "train")) return (fs::path(data_dir) / n).string();
  }
  throw FileError((fs::path(data_dir) / names.front()).string(),
                  "not found: expected a folder with train/<class>/*.JPEG and val/ there or in " + data_dir);
}

// Throws FileError(`path`) naming the classes (by `names` where given) with no `split`
// examples: a class without test examples would leave its task's accuracy to its other
// classes (a task without any would be NaN), one without training examples could not be
// learned.
void require_every_class(const std::vector<int64_t>& labels, int64_t num_classes, const std::string& path,
                         const std::string& split, const std::vector<std::string>& names = {}) {
  std::vector<int64_t> count(static_cast<size_t>(num_classes), 0);
  for (int64_t y : labels) {
    if (y >= 0 && y < num_classes) ++count[static_cast<size_t>(y)];
  }
  std::string missing;
  int64_t n_missing = 0;
  for (int64_t c = 0; c < num_classes; ++c) {
    if (count[static_cast<size_t>(c)] > 0) continue;
    if (++n_missing <= 5) {
      missing += (missing.empty() ? "" : ", ") +
                 (names.empty() ? std::to_string(c) : names[static_cast<size_t>(c)]);
    }
  }
  if (n_missing == 0) return;
  throw FileError(path, "no " + split + " examples of " + std::to_string(n_missing) +
                            (n_missing == 1 ? " class (" : " classes (") + missing +
                            (n_missing > 5 ? ", ...)" : ")") + "; every class needs " + split + " examples");
}

void require_every_class(const Dataset& d, int64_t num_classes, const std::string& path, const std::string& split) {
  const auto y = d.targets.to(torch::kCPU, torch::kLong).contiguous();
  require_every_class(std::vector<int64_t>(y.data_ptr<int64_t>(), y.data_ptr<int64_t>() + y.numel()), num_classes,
                      path, split);
}

// A JPEG tree as 10 tasks of C/10 classes (the class order permuted with `order_seed` unless
// it is 0). Training batches are streamed from the files with the training pipeline
// (random-resized-crop, flip); in memory, at the test pipeline's resolution: the val set and
// a boundary sample of options.boundary_sample_per_class training images per class, decoded
// task by task (so that no second copy of them is ever made).
TaskSequence image_tree_sequence(const std::string& name, const std::string& root, int64_t size,
                                 double resize_ratio, uint64_t order_seed, const BenchmarkOptions& options) {
  const ImageTree tree = scan_image_tree(root);
  const auto classes = static_cast<int64_t>(tree.train.classes.size());
  if (classes % 10 != 0 || classes < 20) {
    throw FileError(root + "/train", std::to_string(classes) + " class folders cannot form 10 tasks of equal size "
                                         "with at least 2 classes each (a multiple of 10, at least 20)");
  }
  require_every_class(tree.val.labels, classes, root + "/val", "val", tree.train.classes);
  const ImageList sample = tree.train.sample_per_class(options.boundary_sample_per_class);
  // What stays in memory as float32 tensors; refuse what cannot fit rather than swap.
  const int64_t kept = sample.size() + tree.val.size();
  const double bytes = static_cast<double>(kept) * 3.0 * static_cast<double>(size * size) * 4.0;
  const double ram = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
  if (bytes > 0.4 * ram) {
    throw UsageError(name + ": the val set and the boundary sample (" + std::to_string(kept) + " images at " +
                     std::to_string(size) + "x" + std::to_string(size) + ") need " +
                     std::to_string(static_cast<int64_t>(bytes / 1e9)) +
                     " GB in memory, more than 40% of this machine's memory" +
                     (sample.size() > 0 && static_cast<double>(tree.val.size()) * bytes / static_cast<double>(kept) < 0.4 * ram
                          ? " (a smaller boundary sample per class holds fewer: kprior-run --boundary-sample)"
                          : ""));
  }
  ImageTransform test_pipeline;
  test_pipeline.size = size;
  test_pipeline.augment = false;
  test_pipeline.resize_ratio = resize_ratio;
  test_pipeline.stats = imagenet_stats();
  std::vector<int64_t> order(static_cast<size_t>(classes));
  for (int64_t c = 0; c < classes; ++c) order[static_cast<size_t>(c)] = c;
  if (order_seed != 0) order = random_permutation(classes, order_seed);
  const int64_t per_task = classes / 10;
  ImageTransform train_pipeline = test_pipeline;
  train_pipeline.augment = true;
  const int threads = options.threads;
  TaskSequence seq{name, {}, classes, true, tree.train.classes};
  for (int64_t t = 0; t < 10; ++t) {
    const std::vector<int64_t> group(order.begin() + t * per_task, order.begin() + (t + 1) * per_task);
    const ImageList task_sample = sample.with_classes(group);
    Task task = make_split_task(name, t, group, load_image_list(task_sample, test_pipeline, 0, threads),
                                load_image_list(tree.val.with_classes(group), test_pipeline, 0, threads), classes);
    task.train_files = task_sample.files;  // which image each scored example is
    const ImageList files = tree.train.with_classes(group);
    task.streamed_examples = files.size();
    task.train_stream = [files, train_pipeline, threads](int64_t batch_size, uint64_t seed) -> std::unique_ptr<BatchSource> {
      return std::make_unique<ImageBatchLoader>(files, train_pipeline, batch_size, true, seed, threads);
    };
    seq.tasks.push_back(std::move(task));
  }
  return seq;
}

}  // namespace

std::vector<std::string> benchmark_names() {
  return {"split-mnist", "permuted-mnist", "split-fashion", "split-cifar", "split-cifar100", "split-tinyimagenet",
          "split-imagenet", "split-h5"};
}

void throw_unknown_benchmark(const std::string& name) {
  std::string known;
  for (const auto& n : benchmark_names()) known += (known.empty() ? "" : ", ") + n;
  throw UsageError("unknown task sequence '" + name + "' (known: " + known + ")");
}

uint64_t imagenet_class_order_seed() { return 1993; }

std::optional<ChannelStats> benchmark_image_stats(const std::string& name) {
  if (name == "split-tinyimagenet" || name == "split-imagenet") return imagenet_stats();  // image_tree_sequence
  if (name == "split-mnist" || name == "permuted-mnist" || name == "split-fashion" || name == "split-cifar" ||
      name == "split-cifar100") {
    return ChannelStats{{0.f, 0.f, 0.f}, {1.f, 1.f, 1.f}};  // pixels / 255, not normalised
  }
  return std::nullopt;
}

TaskSequence make_benchmark(const std::string& name, const std::string& data_dir, uint64_t seed) {
  BenchmarkOptions options;
  options.seed = seed;
  return make_benchmark(name, data_dir, options);
}

TaskSequence make_benchmark(const std::string& name, const std::string& data_dir, const BenchmarkOptions& options) {
  if (options.boundary_sample_per_class < 0) {
    throw UsageError("the boundary sample must be >= 0 images per class (0 = all), got " +
                     std::to_string(options.boundary_sample_per_class));
  }
  const uint64_t seed = options.seed;
  if (name == "split-mnist" || name == "split-fashion") {
    const auto dir = resolve_dir(data_dir, name == "split-mnist" ? "mnist10k" : "fashion-mnist");
    const Dataset train = load_mnist_dir(dir, Split::Train);  // train first: errors name it
    const Dataset test = load_mnist_dir(dir, Split::Test);
    require_every_class(train, 10, dir, "training");
    require_every_class(test, 10, dir, "test");
    return make_split_sequence(name, train, test, consecutive_groups(10, 2), 10);
  }
  if (name == "permuted-mnist") {
    const auto dir = resolve_dir(data_dir, "mnist10k");
    const Dataset train = load_mnist_dir(dir, Split::Train);
    const Dataset test = load_mnist_dir(dir, Split::Test);
    return make_permuted_sequence(name, train, test, 10, seed);
  }
  if (name == "split-cifar") {
    // As published (Zenke et al. 2017; FROMP, METHODS.md §4): CIFAR-10 as task 1, then 5
    // tasks of 10 CIFAR-100 classes; one 60-wide output layer, 6 heads of 10 columns.
    const auto [train, test] = cifar10_then_cifar100(data_dir);
    require_every_class(train, 60, data_dir, "training");
    require_every_class(test, 60, data_dir, "test");
    return make_split_sequence(name, train, test, consecutive_groups(60, 10), 60);
  }
  if (name == "split-cifar100") {
    const auto dir = find_cifar100_dir(data_dir);
    const Dataset train = load_cifar100(dir, Split::Train, /*fine=*/true, /*normalize=*/false);  // as split-cifar
    const Dataset test = load_cifar100(dir, Split::Test, /*fine=*/true, /*normalize=*/false);
    require_every_class(train, 100, dir, "training");
    require_every_class(test, 100, dir, "test");
    return make_split_sequence(name, train, test, consecutive_groups(100, 10), 100);
  }
  if (name == "split-tinyimagenet") {
    // 64x64 images kept at their size (the test pipeline's centre crop is the whole image).
    const auto root = find_image_root(data_dir, {"tiny-imagenet-200", "tinyimagenet"});
    return image_tree_sequence(name, root, 64, 1.0, 0, options);
  }
  if (name == "split-imagenet") {
    const auto root = find_image_root(data_dir, {"imagenet", "ILSVRC2012"});
    return image_tree_sequence(name, root, 224, 256.0 / 224.0, imagenet_class_order_seed(), options);
  }
  if (name == "split-h5") {
    namespace fs = std::filesystem;
    const auto path = fs::is_directory(data_dir) ? (fs::path(data_dir) / "data.h5").string() : data_dir;
    // The test split (when the file has no test arrays) is fixed, not the run's seed, so that
    // every seed of a run is evaluated on the same examples.
    const ArrayFile a = read_array_file(path, 0.2, 0);
    // Every class needs training examples: more classes than examples is a wrong class id or
    // num_classes, found before anything is sized by it.
    if (a.num_classes > a.train.size()) {
      throw FileError(path, std::to_string(a.num_classes) + " classes (attribute num_classes, else the largest class "
                                "id + 1) but " + std::to_string(a.train.size()) +
                                " training examples: every class needs training examples");
    }
    const int64_t per_task = a.classes_per_task > 0 ? a.classes_per_task : 2;
    if (per_task < 2) {  // one class per task: nothing to learn, and 100% accuracy by construction
      throw FileError(path, "attribute classes_per_task is " + std::to_string(per_task) +
                                ": a task needs at least 2 classes");
    }
    if (a.num_classes % per_task != 0) {
      throw FileError(path, std::to_string(a.num_classes) + " classes cannot form tasks of " + std::to_string(per_task) +
                                " (attribute classes_per_task)");
    }
    require_every_class(a.train, a.num_classes, path, "training");
    require_every_class(a.test, a.num_classes, path, a.split_from_inputs ? "test (split off inputs)" : "test");
    return make_split_sequence(name, a.train, a.test, consecutive_groups(a.num_classes, per_task), a.num_classes);
  }
  throw_unknown_benchmark(name);
}

}  // namespace kprior::data
