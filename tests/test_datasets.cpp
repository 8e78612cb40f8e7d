// Image-dataset formats (CIFAR binary, HDF5 array files, JPEG class-per-folder trees) read
// from tiny files written in the exact on-disk formats; decoded values are checked against
// what was written.
#include <H5Cpp.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "catch.h"
#include "dataset_fixtures.h"
#include "kprior/core/error.h"
#include "kprior/data/array_file.h"
#include "kprior/data/cifar.h"
#include "temp_dir.h"

using namespace kprior::data;
using kprior::testing::cifar_pixel;
using kprior::testing::TempDir;
using Catch::Matchers::Contains;

namespace {

// The message of the FileError that `f` throws (fails the test if it throws none).
template <typename F>
std::string file_error(F&& f) {
  try {
    f();
  } catch (const kprior::FileError& e) {
    return e.what();
  }
  FAIL("no FileError thrown");
  return {};
}

}  // namespace

TEST_CASE("CIFAR-10 binary: labels and CHW pixels as written, training batches in order", "[datasets]") {
  TempDir tmp;
  kprior::testing::write_cifar10_fixture(tmp.path().string(), 2);  // 20 records per file
  const auto dir = find_cifar10_dir(tmp.path().string());
  CHECK(std::filesystem::path(dir).filename() == "cifar-10-batches-bin");
  const auto train = load_cifar10(dir, Split::Train, false);
  REQUIRE(train.inputs.sizes() == torch::IntArrayRef({100, 3, 32, 32}));
  REQUIRE(train.targets.dtype() == torch::kLong);
  for (int64_t n : {0, 19, 20, 57, 99}) {
    const int64_t batch = n / 20 + 1, r = n % 20;
    CHECK(train.targets[n].item<int64_t>() == r % 10);
    for (int64_t i : {0, 1, 33, 1023, 1024, 2047, 2048, 3071}) {
      const int64_t c = i / 1024, y = (i % 1024) / 32, x = i % 32;
      CHECK(train.inputs[n][c][y][x].item<float>() == Approx(cifar_pixel(r, i, batch) / 255.0).epsilon(1e-6));
    }
  }
  // Normalised: (p − mean_c) / std_c per channel.
  const auto test = load_cifar10(dir, Split::Test);
  REQUIRE(test.size() == 20);
  const auto stats = cifar10_stats();
  for (int64_t c = 0; c < 3; ++c) {
    const double p = cifar_pixel(3, c * 1024 + 5 * 32 + 7, 0) / 255.0;
    CHECK(test.inputs[3][c][5][7].item<float>() == Approx((p - stats.mean[c]) / stats.std[c]).epsilon(1e-5));
  }
}

TEST_CASE("CIFAR-100 binary: fine and coarse labels, folder names", "[datasets]") {
  TempDir tmp;
  kprior::testing::write_cifar100_fixture(tmp.path().string(), 1);
  const auto dir = find_cifar100_dir(tmp.path().string());
  CHECK(std::filesystem::path(dir).filename() == "cifar-100-binary");
  CHECK(find_cifar100_dir(dir) == dir);  // the folder itself is accepted too
  const auto fine = load_cifar100(dir, Split::Train, true, false);
  const auto coarse = load_cifar100(dir, Split::Test, false, false);
  REQUIRE(fine.size() == 100);
  REQUIRE(coarse.size() == 100);
  for (int64_t r : {0, 42, 99}) {
    CHECK(fine.targets[r].item<int64_t>() == r);
    CHECK(coarse.targets[r].item<int64_t>() == r / 5);
    CHECK(fine.inputs[r][2][31][31].item<float>() == Approx(cifar_pixel(r, 3071, 1) / 255.0).epsilon(1e-6));
    CHECK(coarse.inputs[r][1][0][3].item<float>() == Approx(cifar_pixel(r, 1027, 0) / 255.0).epsilon(1e-6));
  }
  // A CIFAR-10 data dir is not mistaken for CIFAR-100.
  TempDir other;
  kprior::testing::write_cifar10_fixture(other.path().string(), 1);
  CHECK_THAT(file_error([&] { find_cifar100_dir(other.path().string()); }), Contains("cifar-100-binary"));
}

TEST_CASE("CIFAR readers reject bad files with a message naming the file", "[datasets]") {
  TempDir tmp;
  const auto root = tmp.path().string();
  kprior::testing::write_cifar10_fixture(root, 1);
  kprior::testing::write_cifar100_fixture(root, 1);
  const auto c10 = find_cifar10_dir(root), c100 = find_cifar100_dir(root);
  const auto batch3 = c10 + "/data_batch_3.bin";

  SECTION("truncated record") {
    std::filesystem::resize_file(batch3, 3073 * 10 - 1);
    const auto msg = file_error([&] { load_cifar10(c10, Split::Train); });
    CHECK_THAT(msg, Contains("data_batch_3.bin"));
    CHECK_THAT(msg, Contains("3073-byte"));
  }
  SECTION("empty file") {
    std::filesystem::resize_file(batch3, 0);
    CHECK_THAT(file_error([&] { load_cifar10(c10, Split::Train); }), Contains("data_batch_3.bin"));
  }
  SECTION("missing batch") {
    std::filesystem::remove(batch3);
    const auto msg = file_error([&] { load_cifar10(c10, Split::Train); });
    CHECK_THAT(msg, Contains("data_batch_3.bin"));
    CHECK_THAT(msg, Contains("not found"));
  }
  SECTION("CIFAR-10 label out of range") {
    kprior::testing::write_cifar_file(c10 + "/test_batch.bin", {{3}, {10}});
    const auto msg = file_error([&] { load_cifar10(c10, Split::Test); });
    CHECK_THAT(msg, Contains("test_batch.bin"));
    CHECK_THAT(msg, Contains("label 10 of record 1"));
  }
  SECTION("CIFAR-100 fine label out of range, coarse label out of range") {
    kprior::testing::write_cifar_file(c100 + "/test.bin", {{1, 5}, {2, 100}});
    CHECK_THAT(file_error([&] { load_cifar100(c100, Split::Test); }), Contains("label 100 of record 1"));
    kprior::testing::write_cifar_file(c100 + "/test.bin", {{20, 5}});
    CHECK_THAT(file_error([&] { load_cifar100(c100, Split::Test, false); }), Contains("label 20 of record 0"));
  }
  SECTION("CIFAR-100 file read as CIFAR-10 (record size)") {
    const auto msg = file_error([&] { read_cifar_records({c100 + "/train.bin"}, cifar10_format()); });
    CHECK_THAT(msg, Contains("train.bin"));
  }
  SECTION("no CIFAR-10 folder") {
    TempDir empty;
    CHECK_THAT(file_error([&] { find_cifar10_dir(empty.path().string()); }), Contains("cifar-10-batches-bin"));
  }
}

namespace {

using kprior::testing::write_h5_array;

// inputs uint8 [n, 2, 3] with value (7 i + j) % 256 at example i, element j; targets int32 i % 3.
void write_uint8_arrays(const std::string& path, int64_t n) {
  H5::H5File f(path, H5F_ACC_TRUNC);
  std::vector<uint8_t> x(static_cast<size_t>(n * 6));
  for (size_t k = 0; k < x.size(); ++k) x[k] = static_cast<uint8_t>((7 * (k / 6) + k % 6) % 256);
  std::vector<int32_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) y[static_cast<size_t>(i)] = static_cast<int32_t>(i % 3);
  write_h5_array(f, "inputs", H5::PredType::STD_U8LE, {hsize_t(n), 2, 3}, x, H5::PredType::NATIVE_UINT8);
  write_h5_array(f, "targets", H5::PredType::STD_I32LE, {hsize_t(n)}, y, H5::PredType::NATIVE_INT32);
}

}  // namespace

TEST_CASE("HDF5 array file: uint8 inputs, seeded split into disjoint parts", "[datasets]") {
  TempDir tmp;
  const auto path = tmp.file("arrays.h5");
  write_uint8_arrays(path, 10);
  const auto a = read_array_file(path, 0.3, 5);
  CHECK(a.split_from_inputs);
  CHECK(a.num_classes == 3);
  REQUIRE(a.train.size() == 7);
  REQUIRE(a.test.size() == 3);
  CHECK(a.train.inputs.sizes() == torch::IntArrayRef({7, 2, 3}));
  // Every example is in exactly one part, with its own target and pixels.
  std::set<int64_t> seen;
  for (const auto* part : {&a.train, &a.test}) {
    for (int64_t k = 0; k < part->size(); ++k) {
      const int64_t i = std::lround(part->inputs[k][0][0].item<float>() * 255 / 7);
      CHECK(seen.insert(i).second);
      CHECK(part->targets[k].item<int64_t>() == i % 3);
      CHECK(part->inputs[k][1][2].item<float>() == Approx((7 * i + 5) / 255.0).epsilon(1e-6));
    }
  }
  CHECK(seen.size() == 10);
  // The same seed gives the same split, another seed another one.
  CHECK(torch::equal(read_array_file(path, 0.3, 5).test.targets, a.test.targets));
  bool differs = false;
  for (uint64_t s = 6; s < 12 && !differs; ++s) differs = !torch::equal(read_array_file(path, 0.3, s).test.inputs, a.test.inputs);
  CHECK(differs);
}

TEST_CASE("HDF5 array file: float features with a test set and num_classes", "[datasets]") {
  TempDir tmp;
  const auto path = tmp.file("features.h5");
  {
    H5::H5File f(path, H5F_ACC_TRUNC);
    write_h5_array(f, "inputs", H5::PredType::IEEE_F32LE, {4, 3}, std::vector<float>{0.5f, -1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11.25f},
                   H5::PredType::NATIVE_FLOAT);
    write_h5_array(f, "targets", H5::PredType::STD_I64LE, {4}, std::vector<int64_t>{0, 4, 2, 1}, H5::PredType::NATIVE_INT64);
    write_h5_array(f, "test_inputs", H5::PredType::IEEE_F64LE, {2, 3}, std::vector<double>{1, 2, 3, 4, 5, -6.5},
                   H5::PredType::NATIVE_DOUBLE);
    write_h5_array(f, "test_targets", H5::PredType::STD_U8LE, {2}, std::vector<uint8_t>{4, 3}, H5::PredType::NATIVE_UINT8);
    auto root = f.openGroup("/");
    const int64_t classes = 6;
    root.createAttribute("num_classes", H5::PredType::STD_I64LE, H5::DataSpace(H5S_SCALAR))
        .write(H5::PredType::NATIVE_INT64, &classes);
  }
  const auto a = read_array_file(path);
  CHECK_FALSE(a.split_from_inputs);
  CHECK(a.num_classes == 6);
  CHECK(torch::equal(a.train.inputs, torch::tensor({0.5f, -1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f, 9.f, 10.f, 11.25f}).view({4, 3})));
  CHECK(torch::equal(a.train.targets, torch::tensor({0, 4, 2, 1}, torch::kLong)));
  CHECK(torch::equal(a.test.inputs, torch::tensor({1.f, 2.f, 3.f, 4.f, 5.f, -6.5f}).view({2, 3})));
  CHECK(torch::equal(a.test.targets, torch::tensor({4, 3}, torch::kLong)));
}

TEST_CASE("HDF5 array file: bad files are FileErrors naming the file and the array", "[datasets]") {
  TempDir tmp;
  const auto path = tmp.file("bad.h5");
  auto write = [&](const std::function<void(H5::H5File&)>& body) {
    H5::H5File f(path, H5F_ACC_TRUNC);
    body(f);
  };
  const auto x = std::vector<float>(6, 1.0f);
  const auto f32 = H5::PredType::IEEE_F32LE;
  const auto nf = H5::PredType::NATIVE_FLOAT;
  const auto i64 = H5::PredType::STD_I64LE;
  const auto ni = H5::PredType::NATIVE_INT64;
  std::string expected;
  SECTION("lengths differ") {
    write([&](H5::H5File& f) {
      write_h5_array(f, "inputs", f32, {3, 2}, x, nf);
      write_h5_array(f, "targets", i64, {2}, std::vector<int64_t>{0, 1}, ni);
    });
    expected = "'inputs' has 3 examples, 'targets' has 2";
  }
  SECTION("no targets") {
    write([&](H5::H5File& f) { write_h5_array(f, "inputs", f32, {3, 2}, x, nf); });
    expected = "no array 'targets'";
  }
  SECTION("negative class id") {
    write([&](H5::H5File& f) {
      write_h5_array(f, "inputs", f32, {3, 2}, x, nf);
      write_h5_array(f, "targets", i64, {3}, std::vector<int64_t>{0, -1, 1}, ni);
    });
    expected = "negative class id";
  }
  SECTION("float targets") {
    write([&](H5::H5File& f) {
      write_h5_array(f, "inputs", f32, {3, 2}, x, nf);
      write_h5_array(f, "targets", f32, {3}, std::vector<float>{0, 1, 1}, nf);
    });
    expected = "must hold integers";
  }
  SECTION("inputs of rank 1") {
    write([&](H5::H5File& f) {
      write_h5_array(f, "inputs", f32, {6}, x, nf);
      write_h5_array(f, "targets", i64, {6}, std::vector<int64_t>(6, 0), ni);
    });
    expected = "'inputs' has rank 1";
  }
  SECTION("test inputs without test targets") {
    write([&](H5::H5File& f) {
      write_h5_array(f, "inputs", f32, {3, 2}, x, nf);
      write_h5_array(f, "targets", i64, {3}, std::vector<int64_t>{0, 1, 1}, ni);
      write_h5_array(f, "test_inputs", f32, {3, 2}, x, nf);
    });
    expected = "only one of";
  }
  SECTION("test examples of another shape") {
    write([&](H5::H5File& f) {
      write_h5_array(f, "inputs", f32, {3, 2}, x, nf);
      write_h5_array(f, "targets", i64, {3}, std::vector<int64_t>{0, 1, 1}, ni);
      write_h5_array(f, "test_inputs", f32, {2, 3}, x, nf);
      write_h5_array(f, "test_targets", i64, {2}, std::vector<int64_t>{0, 1}, ni);
    });
    expected = "another shape";
  }
  SECTION("class id beyond num_classes") {
    write([&](H5::H5File& f) {
      write_h5_array(f, "inputs", f32, {3, 2}, x, nf);
      write_h5_array(f, "targets", i64, {3}, std::vector<int64_t>{0, 1, 2}, ni);
      const int64_t two = 2;
      f.openGroup("/").createAttribute("num_classes", i64, H5::DataSpace(H5S_SCALAR)).write(ni, &two);
    });
    expected = "class id 2 is not below attribute num_classes = 2";
  }
  SECTION("not HDF5") {
    std::ofstream(path) << "inputs,targets\n1,0\n";
    expected = "not an HDF5 file";
  }
  const auto msg = file_error([&] { read_array_file(path); });
  CHECK_THAT(msg, Contains(path));
  CHECK_THAT(msg, Contains(expected));
  CHECK_THROWS_AS(read_array_file(path, 1.0), kprior::UsageError);
}
