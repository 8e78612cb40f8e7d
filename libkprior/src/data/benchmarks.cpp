#include "kprior/data/benchmarks.h"

#include <filesystem>

#include "kprior/core/error.h"
#include "kprior/data/dataset.h"

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

}  // namespace

std::vector<std::string> benchmark_names() { return {"split-mnist", "permuted-mnist", "split-fashion"}; }

TaskSequence make_benchmark(const std::string& name, const std::string& data_dir, uint64_t seed) {
  if (name == "split-mnist" || name == "split-fashion") {
    const auto dir = resolve_dir(data_dir, name == "split-mnist" ? "mnist10k" : "fashion-mnist");
    const Dataset train = load_mnist_dir(dir, Split::Train);  // train first: errors name it
    const Dataset test = load_mnist_dir(dir, Split::Test);
    return make_split_sequence(name, train, test, consecutive_groups(10, 2), 10);
  }
  if (name == "permuted-mnist") {
    const auto dir = resolve_dir(data_dir, "mnist10k");
    const Dataset train = load_mnist_dir(dir, Split::Train);
    const Dataset test = load_mnist_dir(dir, Split::Test);
    return make_permuted_sequence(name, train, test, 10, seed);
  }
  std::string known;
  for (const auto& n : benchmark_names()) known += (known.empty() ? "" : ", ") + n;
  throw UsageError("unknown task sequence '" + name + "' (known: " + known + ")");
}

}  // namespace kprior::data
