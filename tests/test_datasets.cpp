// Image-dataset formats (CIFAR binary, HDF5 array files, JPEG class-per-folder trees) read
// from tiny files written in the exact on-disk formats; decoded values are checked against
// what was written.
#include <H5Cpp.h>
#include <fmt/core.h>
#include <png.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <set>

#include <jpeglib.h>  // after <cstdio>: writes the grey and CMYK files write_jpeg does not

#include "catch.h"
#include "file_error.h"
#include "dataset_fixtures.h"
#include "kprior/core/error.h"
#include "kprior/data/array_file.h"
#include "kprior/data/benchmarks.h"
#include "kprior/data/channel_stats.h"
#include "kprior/data/cifar.h"
#include "kprior/data/dataset.h"
#include "kprior/data/image_loader.h"
#include "kprior/data/jpeg.h"
#include "kprior/image/grid.h"
#include "kprior/core/random.h"
#include "temp_dir.h"

using namespace kprior::data;
using kprior::testing::cifar_pixel;
using kprior::testing::TempDir;
using Catch::Matchers::Contains;

using kprior::testing::file_error;

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
  SECTION("a folder where a batch file should be") {
    std::filesystem::remove(batch3);
    std::filesystem::create_directory(batch3);
    CHECK_THAT(file_error([&] { load_cifar10(c10, Split::Train); }),
               Contains("data_batch_3.bin: is a folder, not a CIFAR batch file"));
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
  SECTION("inputs stored as a group") {
    write([&](H5::H5File& f) {
      f.createGroup("inputs");
      write_h5_array(f, "targets", i64, {3}, std::vector<int64_t>{0, 1, 1}, ni);
    });
    expected = "'inputs' is not an array (an HDF5 dataset) but a group";
  }
  SECTION("a NaN among the inputs") {
    auto with_nan = x;
    with_nan[3] = std::nanf("");
    write([&](H5::H5File& f) {
      write_h5_array(f, "inputs", f32, {3, 2}, with_nan, nf);
      write_h5_array(f, "targets", i64, {3}, std::vector<int64_t>{0, 1, 1}, ni);
    });
    expected = "array 'inputs' has non-finite values (NaN or infinity) in 1 example, at index 1";
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

// ---- JPEG ----------------------------------------------------------------------------

TEST_CASE("JPEG: flat gray exact, flat colour and smooth images close, DCT downscaling", "[datasets]") {
  TempDir tmp;
  using kprior::testing::flat_image;
  write_jpeg(tmp.file("gray.jpg"), flat_image(16, 24, 77, 77, 77), 90);
  const auto gray = decode_jpeg(tmp.file("gray.jpg"));
  REQUIRE(gray.height == 16);
  REQUIRE(gray.width == 24);
  for (uint8_t v : gray.pixels) CHECK(v == 77);

  write_jpeg(tmp.file("red.jpg"), flat_image(16, 16, 200, 30, 60), 100);
  const auto red = decode_jpeg(tmp.file("red.jpg"));
  for (int64_t y : {0, 7, 15}) {
    CHECK(std::abs(red.at(y, 3, 0) - 200) <= 2);
    CHECK(std::abs(red.at(y, 3, 1) - 30) <= 2);
    CHECK(std::abs(red.at(y, 3, 2) - 60) <= 2);
  }

  const auto smooth = kprior::testing::smooth_image(40, 56);
  write_jpeg(tmp.file("smooth.jpg"), smooth, 95);
  const auto back = decode_jpeg(tmp.file("smooth.jpg"));
  double err = 0;
  int worst = 0;
  for (size_t k = 0; k < smooth.pixels.size(); ++k) {
    const int d = std::abs(int(back.pixels[k]) - int(smooth.pixels[k]));
    err += d;
    worst = std::max(worst, d);
  }
  CHECK(err / static_cast<double>(smooth.pixels.size()) < 2.0);
  CHECK(worst <= 12);

  // min_side: the largest 1/2^k reduction that keeps the shorter side >= min_side.
  const auto quarter = decode_jpeg(tmp.file("smooth.jpg"), 10);
  CHECK(quarter.height == 10);
  CHECK(quarter.width == 14);
  const auto half = decode_jpeg(tmp.file("smooth.jpg"), 11);
  CHECK(half.height == 20);
  CHECK(decode_jpeg(tmp.file("smooth.jpg"), 41).height == 40);
}

namespace {

// A flat JPEG of `values` (one per component) in colour space `stored`, written with libjpeg
// directly: a grey file (1 component) or Adobe CMYK/YCCK (4 components, libjpeg writes the
// Adobe marker, and stores the values as given, the inverted convention of Adobe's files).
void write_flat_jpeg(const std::string& path, int width, int height, const std::vector<uint8_t>& values,
                     J_COLOR_SPACE in, J_COLOR_SPACE stored) {
  FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, f);
  cinfo.image_width = static_cast<JDIMENSION>(width);
  cinfo.image_height = static_cast<JDIMENSION>(height);
  cinfo.input_components = static_cast<int>(values.size());
  cinfo.in_color_space = in;
  jpeg_set_defaults(&cinfo);
  jpeg_set_colorspace(&cinfo, stored);
  jpeg_set_quality(&cinfo, 100, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<uint8_t> row;
  for (int x = 0; x < width; ++x) row.insert(row.end(), values.begin(), values.end());
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&cinfo, rows, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::fclose(f);
}

}  // namespace

TEST_CASE("JPEG: grey files replicate their level; Adobe CMYK and YCCK convert as Pillow does", "[datasets]") {
  TempDir tmp;
  write_flat_jpeg(tmp.file("grey.jpg"), 24, 16, {91}, JCS_GRAYSCALE, JCS_GRAYSCALE);
  const auto grey = decode_jpeg(tmp.file("grey.jpg"));
  REQUIRE(grey.height == 16);
  REQUIRE(grey.width == 24);
  REQUIRE(grey.pixels.size() == 16u * 24u * 3u);
  for (uint8_t v : grey.pixels) CHECK(v == 91);  // a flat level survives the DCT exactly
  CHECK(decode_jpeg(tmp.file("grey.jpg"), 8).width == 12);  // DCT scaling on a grey file too

  // Stored (inverted) C, M, Y, K = 200, 100, 50, 200: Pillow's CMYK → RGB is
  // (255 − c)(255 − k)/255 on the ink values c = 255 − C, k = 255 − K, i.e. C·K/255:
  // R = 156.9, G = 78.4, B = 39.2.
  const double expected[3] = {200.0 * 200 / 255, 100.0 * 200 / 255, 50.0 * 200 / 255};
  for (J_COLOR_SPACE stored : {JCS_CMYK, JCS_YCCK}) {
    CAPTURE(static_cast<int>(stored));
    write_flat_jpeg(tmp.file("cmyk.jpg"), 16, 16, {200, 100, 50, 200}, JCS_CMYK, stored);
    const auto rgb = decode_jpeg(tmp.file("cmyk.jpg"));
    REQUIRE(rgb.pixels.size() == 16u * 16u * 3u);
    for (int64_t y : {0, 8, 15}) {
      for (int c = 0; c < 3; ++c) CHECK(std::abs(rgb.at(y, 5, c) - expected[c]) <= 2.5);
    }
  }
}

TEST_CASE("JPEG trees: a PNG named .JPEG decodes as PNG (grey replicated, alpha dropped)", "[datasets]") {
  TempDir tmp;
  const auto smooth = kprior::testing::smooth_image(12, 20);
  const auto rgb = torch::from_blob(const_cast<uint8_t*>(smooth.pixels.data()), {12, 20, 3}, torch::kUInt8).clone();
  kprior::image::write_png(tmp.file("rgb.JPEG"), rgb);
  const auto back = decode_jpeg(tmp.file("rgb.JPEG"));
  CHECK(back.height == 12);
  CHECK(back.width == 20);
  CHECK(back.pixels == smooth.pixels);  // lossless
  kprior::image::write_png(tmp.file("grey.JPEG"), rgb.select(2, 1).contiguous());
  const auto grey = decode_jpeg(tmp.file("grey.JPEG"), 4);  // min_side: no DCT scaling for PNG
  REQUIRE(grey.height == 12);
  for (int64_t c = 0; c < 3; ++c) CHECK(grey.at(5, 7, c) == smooth.at(5, 7, 1));
  // RGBA: colours kept as stored whatever the alpha (PIL's convert("RGB")), not composited.
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = 2;
  image.height = 1;
  image.format = PNG_FORMAT_RGBA;
  const uint8_t rgba[8] = {200, 100, 50, 0, 10, 20, 30, 128};
  REQUIRE(png_image_write_to_file(&image, tmp.file("alpha.JPEG").c_str(), 0, rgba, 0, nullptr) != 0);
  const auto alpha = decode_jpeg(tmp.file("alpha.JPEG"));
  CHECK(alpha.pixels == std::vector<uint8_t>{200, 100, 50, 10, 20, 30});
  // A broken PNG is a FileError naming the file.
  {
    std::ifstream in(tmp.file("rgb.JPEG"), std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(tmp.file("cut.JPEG"), std::ios::binary).write(bytes.data(), 60);
  }
  CHECK_THAT(file_error([&] { decode_jpeg(tmp.file("cut.JPEG")); }), Contains("cut.JPEG: cannot decode PNG"));
}

namespace {

// Writes a 16-bit RGB PNG with libpng's low-level API and no gAMA/sRGB chunk, as most 16-bit
// photos are stored (the simplified API would only write 16-bit data as linear, with gAMA 1.0).
void write_png16(const std::string& path, uint32_t width, uint32_t height, const std::vector<uint16_t>& rgb) {
  FILE* file = std::fopen(path.c_str(), "wb");
  REQUIRE(file != nullptr);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_init_io(png, file);
  png_set_IHDR(png, info, width, height, 16, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  std::vector<uint8_t> row(6 * width);
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t i = 0; i < 3 * width; ++i) {  // PNG stores 16-bit samples big-endian
      const uint16_t v = rgb[3 * width * y + i];
      row[2 * i] = static_cast<uint8_t>(v >> 8);
      row[2 * i + 1] = static_cast<uint8_t>(v & 0xFF);
    }
    png_write_row(png, row.data());
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  std::fclose(file);
}

}  // namespace

TEST_CASE("JPEG trees: a 16-bit PNG decodes to its samples scaled to 8 bits, not gamma-encoded", "[datasets]") {
  TempDir tmp;
  // Samples across the range; 0x8000 is where gamma-encoding as if linear would show most
  // (0.5 -> ~0.73, 186 instead of 128).
  const std::vector<uint16_t> samples = {0, 0x8000, 65535, 0x1234, 0x4000, 0xC000, 257, 0x7FFF, 0xFF00};
  write_png16(tmp.file("deep.JPEG"), 3, 1, samples);
  const auto decoded = decode_jpeg(tmp.file("deep.JPEG"));
  REQUIRE(decoded.height == 1);
  REQUIRE(decoded.width == 3);
  REQUIRE(decoded.pixels.size() == samples.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    // Oracle: the sample's fraction of full scale in 8 bits (PIL keeps the high byte, which
    // differs by at most one).
    const double expected = samples[i] * 255.0 / 65535.0;
    INFO("sample " << samples[i] << " decoded " << int(decoded.pixels[i]) << " expected " << expected);
    CHECK(std::abs(decoded.pixels[i] - expected) <= 1.0);
  }
}

TEST_CASE("JPEG: files that are not JPEG or do not decode are FileErrors naming the file", "[datasets]") {
  TempDir tmp;
  std::ofstream(tmp.file("text.JPEG")) << "not an image";
  CHECK_THAT(file_error([&] { decode_jpeg(tmp.file("text.JPEG")); }), Contains("text.JPEG: not a JPEG file"));
  {
    std::ofstream bad(tmp.file("bad.jpg"), std::ios::binary);
    const unsigned char bytes[] = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x03, 0x01, 0x02, 0x03, 0x04};
    bad.write(reinterpret_cast<const char*>(bytes), sizeof bytes);
  }
  CHECK_THAT(file_error([&] { decode_jpeg(tmp.file("bad.jpg")); }), Contains("bad.jpg: cannot decode JPEG"));
  CHECK_THAT(file_error([&] { decode_jpeg(tmp.file("missing.jpg")); }), Contains("missing.jpg"));
  // A truncated file is refused (libjpeg would fill the missing rows with grey), as PIL does.
  const auto smooth = kprior::testing::smooth_image(40, 56);
  write_jpeg(tmp.file("whole.jpg"), smooth, 90);
  std::ifstream in(tmp.file("whole.jpg"), std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(tmp.file("cut.jpg"), std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() * 6 / 10));
  CHECK(decode_jpeg(tmp.file("whole.jpg")).height == 40);
  CHECK_THAT(file_error([&] { decode_jpeg(tmp.file("cut.jpg")); }), Contains("cut.jpg: cannot decode JPEG: Premature end of JPEG file"));
}

TEST_CASE("Fashion-MNIST's grey statistics are those of its 60,000 training images", "[datasets]") {
  // The constants (the memory-perturbation code's normalisation) against the bundled data.
  const auto dir = std::string(KPRIOR_SOURCE_DIR) + "/data/fashion-mnist";
  INFO("the bundled Fashion-MNIST (data/prepare.sh writes it): " << dir);
  REQUIRE(std::filesystem::exists(dir + "/train-images-idx3-ubyte.gz"));
  auto train = kprior::data::load_mnist_dir(dir, kprior::data::Split::Train);
  REQUIRE(train.size() == 60000);
  const auto x = train.inputs.to(torch::kFloat64);
  const auto stats = fashion_mnist_stats();
  CHECK(x.mean().item<double>() == Approx(stats.mean).margin(5e-5));
  CHECK(x.std().item<double>() == Approx(stats.std).margin(5e-5));
  // Standardised, the training pixels have mean 0 and std 1; undone, they are as read.
  const auto z = normalize_grey(train.inputs.clone(), stats).to(torch::kFloat64);
  CHECK(z.mean().item<double>() == Approx(0).margin(2e-4));
  CHECK(z.std().item<double>() == Approx(1).margin(2e-4));
  CHECK(torch::allclose(denormalize_grey(normalize_grey(train.inputs.clone(), stats), stats), train.inputs, 1e-6, 1e-6));
}

TEST_CASE("showing images: the JPEG benchmarks' normalisation undone, [0, 1] pixels drawn as they are", "[datasets]") {
  torch::manual_seed(4);
  const auto x = torch::rand({2, 3, 4, 5}, torch::kFloat64);
  const auto stats = benchmark_image_stats("split-imagenet");
  REQUIRE(stats.has_value());
  CHECK(stats->mean == imagenet_stats().mean);
  const auto normalised = normalize_channels(x.clone(), *stats);
  CHECK_FALSE(torch::allclose(normalised, x));
  const auto shown = denormalize_channels(normalised.clone(), *stats);
  CHECK(torch::allclose(shown, x, 1e-12, 1e-12));
  // CIFAR and MNIST pixels are already intensities: identity statistics; split-h5's unknown.
  CHECK(benchmark_image_stats("split-cifar")->std == std::array<float, 3>{1.f, 1.f, 1.f});
  CHECK(benchmark_image_stats("split-cifar")->mean == std::array<float, 3>{0.f, 0.f, 0.f});
  CHECK_FALSE(benchmark_image_stats("split-h5").has_value());
  // unit_range: each tile's pixel is round(255 x) (no per-image stretch), as it was.
  const auto grid = kprior::image::labelled_grid(shown, {}, {2, 1, true});
  for (int64_t c = 0; c < 3; ++c) {
    CHECK(grid[1 + 2][1 + 3][c].item<int64_t>() == std::lround(255 * x[0][c][2][3].item<double>()));
    CHECK(grid[1 + 1][1 + 5 + 1 + 4][c].item<int64_t>() == std::lround(255 * x[1][c][1][4].item<double>()));
  }
  // A flat mid-grey image stays mid-grey (stretching it would make it black).
  const auto grey = kprior::image::labelled_grid(torch::full({1, 3, 2, 2}, 0.5), {}, {1, 1, true});
  CHECK(grey[1][1][0].item<int64_t>() == 128);
}

TEST_CASE("image transforms: crop boxes, identity resampling, flips, normalisation", "[datasets]") {
  // The test pipeline's box: shorter side 300 resized to 256, then 224 → a 262.5 square.
  const auto box = center_crop(300, 400, 224, 256.0 / 224.0);
  CHECK(box.height == Approx(262.5));
  CHECK(box.width == Approx(262.5));
  CHECK(box.y == Approx(18.75));
  CHECK(box.x == Approx(68.75));

  // Random-resized-crop boxes lie inside the image with area fraction and ratio in range.
  kprior::SplitMix64 rng(3);
  for (int k = 0; k < 200; ++k) {
    const auto b = random_resized_crop(120, 90, 0.08, rng);
    CHECK(b.y >= 0);
    CHECK(b.x >= 0);
    CHECK(b.y + b.height <= 120);
    CHECK(b.x + b.width <= 90);
    // Sides are rounded to whole pixels: the limits hold up to half a pixel per side.
    CHECK((b.height + 0.5) * (b.width + 0.5) >= 0.08 * 120 * 90);
    CHECK((b.width + 0.5) / (b.height - 0.5) >= 3.0 / 4.0);
    CHECK((b.width - 0.5) / (b.height + 0.5) <= 4.0 / 3.0);
  }
  kprior::SplitMix64 a(9), b(9);
  const auto ba = random_resized_crop(50, 60, 0.5, a), bb = random_resized_crop(50, 60, 0.5, b);
  CHECK(ba.x == bb.x);
  CHECK(ba.height == bb.height);

  // Resampling the whole image at its own size returns its pixels, normalised; flipped, mirrored.
  const auto img = kprior::testing::smooth_image(6, 6);
  const ChannelStats unit{{0, 0, 0}, {1, 1, 1}};
  std::vector<float> out(3 * 36), flipped(3 * 36);
  resample(img, {0, 0, 6, 6, false}, 6, unit, out.data());
  resample(img, {0, 0, 6, 6, true}, 6, unit, flipped.data());
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t y = 0; y < 6; ++y) {
      for (int64_t x = 0; x < 6; ++x) {
        CHECK(out[static_cast<size_t>(c * 36 + y * 6 + x)] == Approx(img.at(y, x, c) / 255.0).epsilon(1e-6));
        CHECK(flipped[static_cast<size_t>(c * 36 + y * 6 + x)] == out[static_cast<size_t>(c * 36 + y * 6 + 5 - x)]);
      }
    }
  }
  // Enlarging, shrinking, off-centre and edge boxes against bilinear interpolation written
  // out in float64 (pixel centres at half-integers, clamped at the image's edges).
  const auto photo = kprior::testing::smooth_image(23, 31);
  for (const CropBox box : {CropBox{3, 4, 7, 9, false}, CropBox{0, 0, 23, 31, true}, CropBox{15, 20, 8, 11, true},
                            CropBox{1.5, 2.25, 19.5, 12, false}}) {
    CAPTURE(box.y, box.x, box.height, box.width, box.flip);
    const int64_t size = 13;
    std::vector<float> got(static_cast<size_t>(3 * size * size));
    resample(photo, box, size, unit, got.data());
    double worst = 0;
    for (int64_t i = 0; i < size; ++i) {
      for (int64_t j = 0; j < size; ++j) {
        const double jj = box.flip ? static_cast<double>(size - 1 - j) : static_cast<double>(j);
        const double sy = std::clamp(box.y + (i + 0.5) * box.height / size - 0.5, 0.0, 22.0);
        const double sx = std::clamp(box.x + (jj + 0.5) * box.width / size - 0.5, 0.0, 30.0);
        const auto y0 = static_cast<int64_t>(sy), x0 = static_cast<int64_t>(sx);
        const int64_t y1 = std::min<int64_t>(y0 + 1, 22), x1 = std::min<int64_t>(x0 + 1, 30);
        for (int64_t c = 0; c < 3; ++c) {
          const double top = photo.at(y0, x0, c) + (sx - x0) * (photo.at(y0, x1, c) - photo.at(y0, x0, c));
          const double bottom = photo.at(y1, x0, c) + (sx - x0) * (photo.at(y1, x1, c) - photo.at(y1, x0, c));
          const double want = (top + (sy - y0) * (bottom - top)) / 255.0;
          worst = std::max(worst, std::abs(want - got[static_cast<size_t>(c * size * size + i * size + j)]));
        }
      }
    }
    CHECK(worst < 1e-5);
  }
  // A flat image stays flat under any box, and is normalised with the channel statistics.
  const auto flat = kprior::testing::flat_image(30, 20, 10, 128, 250);
  const auto stats = imagenet_stats();
  std::vector<float> f(3 * 16);
  kprior::SplitMix64 r(1);
  transform_image(flat, ImageTransform{4, true, 0.08, 1.0, stats}, r, f.data());
  const int rgb[3] = {10, 128, 250};
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t k = 0; k < 16; ++k) {
      CHECK(f[static_cast<size_t>(c * 16 + k)] == Approx((rgb[c] / 255.0 - stats.mean[c]) / stats.std[c]).margin(1e-5));
    }
  }
}

TEST_CASE("JPEG trees: class-per-folder and TinyImageNet layouts, decoded in memory", "[datasets]") {
  TempDir tmp;
  const auto root = tmp.path() / "imagenet";
  const auto names = kprior::testing::write_jpeg_tree(root.string(), 3, 2, 1, false);
  const auto tree = scan_image_tree(root.string());
  CHECK(tree.train.classes == names);
  REQUIRE(tree.train.size() == 6);
  REQUIRE(tree.val.size() == 3);
  CHECK(tree.train.labels == std::vector<int64_t>{0, 0, 1, 1, 2, 2});
  CHECK(tree.val.labels == std::vector<int64_t>{0, 1, 2});
  {
    // A .png among the JPEGs is one of the class's images (as in torchvision's ImageFolder);
    // other files are not images.
    const auto gray = kprior::testing::tree_gray(1);
    kprior::image::write_png((root / "train" / names[1] / "extra.png").string(),
                             torch::full({6, 7, 3}, static_cast<int64_t>(gray), torch::kUInt8));
    std::ofstream(root / "train" / names[1] / "notes.txt") << "not an image";
    const auto with_png = scan_image_tree(root.string());
    REQUIRE(with_png.train.size() == 7);
    CHECK(with_png.train.labels == std::vector<int64_t>{0, 0, 1, 1, 1, 2, 2});
    const auto png = decode_jpeg(with_png.train.files[2]);
    CHECK(png.width == 7);
    CHECK(png.at(3, 4, 0) == gray);
    std::filesystem::remove(root / "train" / names[1] / "extra.png");
  }
  const ChannelStats unit{{0, 0, 0}, {1, 1, 1}};
  ImageTransform t{5, false, 0.08, 256.0 / 224.0, unit};
  const auto d = load_image_list(tree.train, t, 0, 2);
  REQUIRE(d.inputs.sizes() == torch::IntArrayRef({6, 3, 5, 5}));
  CHECK(torch::equal(d.targets, torch::tensor({0, 0, 1, 1, 2, 2}, torch::kLong)));
  for (int64_t i = 0; i < 6; ++i) {
    const float g = kprior::testing::tree_gray(i / 2) / 255.0f;
    CHECK((d.inputs[i] - g).abs().max().item<float>() < 1e-6);  // flat gray: exact
  }

  const auto tiny = tmp.path() / "tiny";
  kprior::testing::write_jpeg_tree(tiny.string(), 4, 1, 2, true);
  const auto t2 = scan_image_tree(tiny.string());
  CHECK(t2.train.size() == 4);
  REQUIRE(t2.val.size() == 8);
  CHECK(t2.val.labels == std::vector<int64_t>{0, 0, 1, 1, 2, 2, 3, 3});
  const auto v = load_image_list(t2.val, t, 0, 3);
  CHECK((v.inputs[5] - kprior::testing::tree_gray(2) / 255.0f).abs().max().item<float>() < 1e-6);
}

TEST_CASE("JPEG trees: bad layouts are FileErrors naming the place", "[datasets]") {
  TempDir tmp;
  const auto root = tmp.path().string();
  kprior::testing::write_jpeg_tree(root, 2, 1, 1, true);
  const auto ann = tmp.file("val/val_annotations.txt");
  SECTION("unknown class in the annotations") {
    std::ofstream(ann) << "val_0.JPEG\tn99999999\t0\t0\t7\t7\n";
    CHECK_THAT(file_error([&] { scan_image_tree(root); }), Contains("class 'n99999999' is not a training class"));
  }
  SECTION("annotated image missing") {
    std::ofstream(ann) << "val_7.JPEG\tn00000001\t0\t0\t7\t7\n";
    CHECK_THAT(file_error([&] { scan_image_tree(root); }), Contains("val_7.JPEG does not exist"));
  }
  SECTION("an image listed twice (it would be tested twice, with two labels)") {
    std::ofstream(ann) << "val_0.JPEG\tn00000001\t0\t0\t7\t7\nval_1.JPEG\tn00000001\t0\t0\t7\t7\n"
                          "val_0.JPEG\tn00000000\t0\t0\t7\t7\n";
    CHECK_THAT(file_error([&] { scan_image_tree(root); }), Contains("line 3: val_0.JPEG is listed twice (also line 1)"));
  }
  SECTION("annotations as a folder") {
    std::filesystem::remove(ann);
    std::filesystem::create_directory(ann);
    CHECK_THAT(file_error([&] { scan_image_tree(root); }), Contains("is a folder, not TinyImageNet's label list"));
  }
  SECTION("malformed annotation line") {
    std::ofstream(ann) << "val_0.JPEG n00000001\n";
    CHECK_THAT(file_error([&] { scan_image_tree(root); }), Contains("line 1"));
  }
  SECTION("an image in a format that is not read (not skipped: the class would be incomplete)") {
    std::ofstream(tmp.path() / "train" / "n00000001" / "photo.BMP") << "BM";
    CHECK_THAT(file_error([&] { scan_image_tree(root); }), Contains("photo.BMP: is an image format kprior does not read"));
  }
  SECTION("class folder without images") {
    std::filesystem::create_directories(tmp.path() / "train" / "n00000005");
    CHECK_THAT(file_error([&] { scan_image_tree(root); }), Contains("n00000005: has no images (.JPEG, .jpg or .png)"));
  }
  SECTION("val class folder that is not a training class") {
    TempDir other;
    kprior::testing::write_jpeg_tree(other.path().string(), 2, 1, 1, false);
    std::filesystem::rename(other.path() / "val" / "n00000001", other.path() / "val" / "n00000009");
    CHECK_THAT(file_error([&] { scan_image_tree(other.path().string()); }), Contains("is not a class of the training set"));
  }
  SECTION("TinyImageNet's val/images without its annotations") {
    std::filesystem::remove(ann);
    CHECK_THAT(file_error([&] { scan_image_tree(root); }),
               Contains("val_annotations.txt: not found: TinyImageNet's val/images/ needs it"));
  }
  SECTION("ImageNet's validation images unsorted, as distributed") {
    TempDir flat;
    kprior::testing::write_jpeg_tree(flat.path().string(), 2, 1, 1, false);
    std::filesystem::rename(flat.path() / "val" / "n00000001", flat.path() / "moved");
    for (const auto& e : std::filesystem::directory_iterator(flat.path() / "moved")) {
      std::filesystem::rename(e.path(), flat.path() / "val" / e.path().filename());
    }
    CHECK_THAT(file_error([&] { scan_image_tree(flat.path().string()); }),
               Contains("val: holds images directly: sort them into one folder per class"));
  }
  SECTION("no val folder") {
    std::filesystem::remove_all(tmp.path() / "val");
    CHECK_THAT(file_error([&] { scan_image_tree(root); }), Contains("val: not found: the validation images"));
  }
  SECTION("no train folder") {
    TempDir empty;
    CHECK_THAT(file_error([&] { scan_image_tree(empty.path().string()); }), Contains("train: not found"));
  }
}

TEST_CASE("ImageBatchLoader: epochs cover every image once, thread count and prefetch change nothing", "[datasets]") {
  TempDir tmp;
  const auto root = tmp.path().string();
  // Non-flat images so that crops and flips show.
  kprior::testing::write_jpeg_tree(root, 2, 5, 1, false);
  auto tree = scan_image_tree(root);
  for (size_t i = 0; i < tree.train.files.size(); ++i) {
    write_jpeg(tree.train.files[i], kprior::testing::smooth_image(20 + static_cast<int64_t>(i), 24));
  }
  ImageTransform aug{8, true, 0.3, 1.0, imagenet_stats()};
  ImageBatchLoader one(tree.train, aug, 4, true, 11, 1);
  ImageBatchLoader three(tree.train, aug, 4, true, 11, 3);
  REQUIRE(one.num_batches() == 3);
  std::vector<torch::Tensor> epoch0;
  for (int64_t e = 0; e < 2; ++e) {
    one.set_epoch(e);
    three.set_epoch(e);
    std::set<int64_t> seen;
    for (int64_t b = 0; b < one.num_batches(); ++b) {
      const auto x = one.batch(b), y = three.batch(b);
      CHECK(torch::equal(x.inputs, y.inputs));
      CHECK(torch::equal(x.indices, y.indices));
      CHECK(x.inputs.size(1) == 3);
      for (int64_t k = 0; k < x.indices.size(0); ++k) {
        const int64_t i = x.indices[k].item<int64_t>();
        CHECK(seen.insert(i).second);
        CHECK(x.targets[k].item<int64_t>() == tree.train.labels[static_cast<size_t>(i)]);
      }
      if (e == 0) epoch0.push_back(x.inputs);
    }
    CHECK(seen.size() == 10);
  }
  // Out-of-order access (no prefetch hit) gives the same batch; a new epoch new crops.
  one.set_epoch(0);
  CHECK(torch::equal(one.batch(2).inputs, epoch0[2]));
  CHECK(torch::equal(one.batch(1).inputs, epoch0[1]));
  // Unshuffled: the same images in every epoch, new crops and flips; without augmentation
  // the batches are the rows of load_image_list.
  ImageBatchLoader fixed(tree.train, aug, 4, false, 11, 2);
  const auto crops0 = fixed.batch(0).inputs;
  fixed.set_epoch(1);
  CHECK_FALSE(torch::equal(fixed.batch(0).inputs, crops0));
  ImageTransform test_t = aug;
  test_t.augment = false;
  ImageBatchLoader eval(tree.train, test_t, 4, false, 11, 2);
  CHECK(torch::equal(eval.batch(1).inputs, load_image_list(tree.train, test_t, 0, 1).inputs.slice(0, 4, 8)));
  // A decoding error surfaces as the file's FileError.
  std::ofstream(tree.train.files[3]) << "broken";
  ImageBatchLoader plain(tree.train, aug, 10, false, 0, 2);
  CHECK_THAT(file_error([&] { plain.batch(0); }), Contains(tree.train.files[3]));
}

TEST_CASE("split-tinyimagenet and split-imagenet from JPEG trees", "[datasets]") {
  TempDir tmp;
  kprior::testing::write_jpeg_tree((tmp.path() / "tiny-imagenet-200").string(), 20, 2, 1, true);
  const auto tiny = make_benchmark("split-tinyimagenet", tmp.path().string(), 0);
  REQUIRE(tiny.size() == 10);
  CHECK(tiny.num_outputs == 20);
  CHECK(tiny.tasks[3].classes == std::vector<int64_t>{6, 7});
  CHECK(tiny.tasks[3].train.inputs.sizes() == torch::IntArrayRef({4, 3, 64, 64}));
  CHECK(tiny.tasks[3].test.size() == 2);
  // Each in-memory training example's file, row by row: in its class's folder.
  REQUIRE(tiny.tasks[3].train_files.size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    const auto& wnid = tiny.class_names[static_cast<size_t>(tiny.tasks[3].train.targets[static_cast<int64_t>(i)].item<int64_t>())];
    CHECK_THAT(tiny.tasks[3].train_files[i], Contains("/train/" + wnid + "/"));
  }
  const auto stats = imagenet_stats();
  const double g = kprior::testing::tree_gray(7) / 255.0;
  CHECK(tiny.tasks[3].test.inputs[1][2][10][20].item<float>() == Approx((g - stats.mean[2]) / stats.std[2]).margin(1e-5));
  // Training is streamed from the files: all of the task's images, augmented, on the CPU.
  REQUIRE(tiny.tasks[3].train_stream);
  CHECK(tiny.tasks[3].train_size() == 4);
  auto stream = tiny.tasks[3].train_stream(3, 5);
  CHECK(stream->size() == 4);
  REQUIRE(stream->num_batches() == 2);
  const auto batch = stream->batch(1);
  CHECK(batch.inputs.sizes() == torch::IntArrayRef({1, 3, 64, 64}));
  const auto label = batch.targets[0].item<int64_t>();
  CHECK((label == 6 || label == 7));
  const double gl = kprior::testing::tree_gray(label) / 255.0;  // flat images stay flat under any crop
  CHECK(batch.inputs[0][0][5][50].item<float>() == Approx((gl - stats.mean[0]) / stats.std[0]).margin(1e-5));

  const auto root = tmp.path() / "imagenet";
  kprior::testing::write_jpeg_tree(root.string(), 30, 1, 1, false);
  const auto seq = make_benchmark("split-imagenet", root.string(), 0);
  REQUIRE(seq.size() == 10);
  CHECK(seq.num_outputs == 30);
  const auto order = kprior::random_permutation(30, imagenet_class_order_seed());
  for (int64_t t = 0; t < 10; ++t) {
    CHECK(seq.tasks[t].classes == std::vector<int64_t>(order.begin() + 3 * t, order.begin() + 3 * t + 3));
    for (int64_t i = 0; i < seq.tasks[t].test.size(); ++i) {
      const auto y = seq.tasks[t].test.targets[i].item<int64_t>();
      CHECK(std::find(seq.tasks[t].classes.begin(), seq.tasks[t].classes.end(), y) != seq.tasks[t].classes.end());
    }
  }
  CHECK(seq.tasks[0].train.inputs.sizes() == torch::IntArrayRef({3, 3, 224, 224}));
  std::vector<int64_t> identity(30);
  std::iota(identity.begin(), identity.end(), 0);
  CHECK(order != identity);  // the classes really are shuffled

  TempDir odd;
  kprior::testing::write_jpeg_tree((odd.path() / "imagenet").string(), 7, 1, 1, false);
  CHECK_THAT(file_error([&] { make_benchmark("split-imagenet", odd.path().string(), 0); }), Contains("cannot form 10 tasks"));
  TempDir ten;  // 10 tasks of one class: nothing to learn, 100% by construction
  kprior::testing::write_jpeg_tree((ten.path() / "imagenet").string(), 10, 1, 1, false);
  CHECK_THAT(file_error([&] { make_benchmark("split-imagenet", ten.path().string(), 0); }),
             Contains("10 class folders cannot form 10 tasks of equal size with at least 2 classes each"));
}

TEST_CASE("ImageList::sample_per_class: a fixed random draw per class, in the list's order", "[datasets]") {
  ImageList list;
  list.classes = {"n01", "n02", "n03"};
  for (int c = 0; c < 3; ++c) {
    for (int k = 0; k < 10; ++k) {
      list.files.push_back(fmt::format("{}/{:02d}.JPEG", list.classes[static_cast<size_t>(c)], k));
      list.labels.push_back(c);
    }
  }
  const auto a = list.sample_per_class(4);
  REQUIRE(a.size() == 12);
  CHECK(a.files == list.sample_per_class(4).files);  // the same draw every time
  CHECK(std::is_sorted(a.files.begin(), a.files.end()));  // the list's order kept
  int first_four = 0;
  for (int c = 0; c < 3; ++c) {
    CHECK(std::count(a.labels.begin(), a.labels.end(), c) == 4);
    first_four += a.files[static_cast<size_t>(4 * c + 3)] == fmt::format("{}/03.JPEG", list.classes[static_cast<size_t>(c)]);
  }
  CHECK(first_four < 3);  // not simply each class's first four files
  // A class's draw depends on its name and files only: removing another class changes nothing.
  const auto two = list.with_classes({1, 2}).sample_per_class(4);
  CHECK(std::vector<std::string>(a.files.begin() + 4, a.files.end()) == two.files);
  CHECK(list.sample_per_class(0).files == list.files);
  CHECK(list.sample_per_class(11).files == list.files);
  CHECK_THROWS_AS(list.sample_per_class(-1), kprior::UsageError);
}

TEST_CASE("sequence_fingerprint: the same data gives the same value, other data another", "[datasets]") {
  TempDir tmp;
  kprior::testing::write_jpeg_tree((tmp.path() / "tiny-imagenet-200").string(), 20, 3, 1, true);
  BenchmarkOptions one, two;
  one.threads = 1;
  two.threads = 2;
  two.seed = 5;  // no JPEG tree depends on the run's seed
  const auto f1 = sequence_fingerprint(make_benchmark("split-tinyimagenet", tmp.path().string(), one));
  CHECK(f1 == sequence_fingerprint(make_benchmark("split-tinyimagenet", tmp.path().string(), two)));
  BenchmarkOptions smaller = one;
  smaller.boundary_sample_per_class = 2;
  CHECK(f1 != sequence_fingerprint(make_benchmark("split-tinyimagenet", tmp.path().string(), smaller)));
  // Split sequences: the same data gives the same value; the images of two examples of
  // different tasks swapped (the labels as they were), another, as another permutation does.
  const Dataset train{torch::rand({8, 1, 4, 4}), torch::tensor({0, 1, 2, 3, 0, 1, 2, 3})};
  const Dataset test{torch::rand({4, 1, 4, 4}), torch::tensor({0, 1, 2, 3})};
  const auto split = [&](const Dataset& d) { return sequence_fingerprint(make_split_sequence("s", d, test, {{0, 1}, {2, 3}}, 4)); };
  CHECK(split(train) == split(Dataset{train.inputs.clone(), train.targets.clone()}));
  const auto images = train.inputs.clone();
  images[0].copy_(train.inputs[2]);
  images[2].copy_(train.inputs[0]);
  const Dataset swapped{images, train.targets};
  CHECK(split(train) != split(swapped));
  CHECK(sequence_fingerprint(make_permuted_sequence("p", train, test, 3, 1)) !=
        sequence_fingerprint(make_permuted_sequence("p", train, test, 3, 2)));
}

TEST_CASE("JPEG trees: the boundary sample holds the chosen number of images per class", "[datasets]") {
  TempDir tmp;
  kprior::testing::write_jpeg_tree((tmp.path() / "tiny-imagenet-200").string(), 20, 5, 1, true);
  BenchmarkOptions options;
  auto per_class = [&](int64_t sample) {
    options.boundary_sample_per_class = sample;
    const auto seq = make_benchmark("split-tinyimagenet", tmp.path().string(), options);
    std::vector<int64_t> counts;
    for (const auto& t : seq.tasks) {
      CHECK(t.train_size() == 10);  // the stream trains on every image, whatever the sample
      for (int64_t c : t.classes) counts.push_back((t.train.targets == c).sum().item<int64_t>());
    }
    return counts;
  };
  CHECK(per_class(2) == std::vector<int64_t>(20, 2));
  CHECK(per_class(0) == std::vector<int64_t>(20, 5));  // 0 = all
  CHECK(per_class(9) == std::vector<int64_t>(20, 5));  // a class with fewer: all of it
  options.boundary_sample_per_class = -1;
  CHECK_THROWS_AS(make_benchmark("split-tinyimagenet", tmp.path().string(), options), kprior::UsageError);
}

TEST_CASE("split-cifar and split-cifar100 task sequences", "[datasets]") {
  TempDir tmp;
  kprior::testing::write_cifar10_fixture(tmp.path().string(), 1);
  kprior::testing::write_cifar100_fixture(tmp.path().string(), 2);
  const auto seq = make_benchmark("split-cifar", tmp.path().string(), 0);
  REQUIRE(seq.size() == 6);
  CHECK(seq.num_outputs == 60);
  CHECK(seq.multi_head);
  CHECK(seq.tasks[0].classes == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(seq.tasks[0].train.size() == 50);  // 5 batches x 10 records
  for (int64_t t = 1; t < 6; ++t) {
    CHECK(seq.tasks[t].classes.front() == 10 * t);
    CHECK(seq.tasks[t].train.size() == 20);  // 10 CIFAR-100 classes x 2
    CHECK(seq.tasks[t].test.size() == 20);
  }
  // Task 2 (index 1) is CIFAR-100 fine classes 0..9; its first training example is record 0
  // of train.bin (fine class 0), scaled to [0, 1] and not normalised (the published ToTensor()).
  const double p = cifar_pixel(0, 0, 1) / 255.0;
  CHECK(seq.tasks[1].train.targets[0].item<int64_t>() == 10);
  CHECK(seq.tasks[1].train.inputs[0][0][0][0].item<float>() == Approx(p).epsilon(1e-6));
  const auto c100 = make_benchmark("split-cifar100", tmp.path().string(), 0);
  CHECK(c100.size() == 10);
  CHECK(c100.num_outputs == 100);
  CHECK(c100.tasks[9].classes.back() == 99);
}

// ---- models by name ----------------------------------------------------------------------

#include "kprior/linearize/linearize.h"
#include "kprior/nn/models.h"
#include "kprior/regularize/factory.h"
#include "kprior/train/continual_learner.h"

TEST_CASE("models by name: shapes checked, ResNet-18 trains with replay and linearizes", "[datasets]") {
  using namespace kprior;
  CHECK(nn::parse_model("cifarnet") == nn::ModelKind::CifarNet);
  CHECK_THROWS_AS(nn::parse_model("vgg"), UsageError);
  CHECK_THROWS_WITH(nn::make_model(nn::ModelKind::CifarNet, {3, 64, 64}, 10), Contains("[C, 32, 32]"));
  CHECK_THROWS_WITH(nn::make_model(nn::ModelKind::LeNet5, {784}, 10), Contains("[C, 28, 28]"));
  CHECK(nn::make_model(nn::ModelKind::CifarNet, {3, 32, 32}, 60)->forward(torch::zeros({2, 3, 32, 32})).sizes() ==
        torch::IntArrayRef({2, 60}));
  CHECK(nn::make_model(nn::ModelKind::MLP, {1, 28, 28}, 10, {7})->parameters().front().sizes() == torch::IntArrayRef({7, 784}));

  torch::manual_seed(0);
  auto resnet = nn::make_model(nn::ModelKind::ResNet18, {3, 8, 8}, 4);
  CHECK(resnet->parameters().size() == 62);  // torchvision's ResNet-18 has 62 parameter tensors
  // It linearizes (BatchNorm in eval mode): a GGN diagonal for every parameter tensor.
  const auto ggn = linearize::curvature_diagonal(*resnet, torch::randn({2, 3, 8, 8}), {}, {0, 1}, linearize::Curvature::GGN);
  CHECK(ggn.size() == 62);
  CHECK(ggn.back().sum().item<double>() > 0);  // fc's bias

  // Two tiny tasks with replay: trains (BatchNorm in train mode), evaluates in eval mode.
  auto x = torch::randn({16, 3, 8, 8});
  auto y = torch::arange(16, torch::kLong) % 4;
  const auto seq = make_split_sequence("tiny", {x, y}, {x, y}, consecutive_groups(4, 2), 4);
  train::ContinualLearner learner(resnet, regularize::make_regularizers("replay", {}),
                                  train::LearnerOptions().optimizer(train::OptimizerKind::Adam).epochs(1).batch_size(8)
                                      .memory_per_task(2).selection(memory::Selection::Random));
  const auto r = train::run_sequence(learner, seq);
  CHECK(learner.tasks_observed() == 2);
  CHECK(learner.memory().size() == 2);
  CHECK(r.task_incremental.has(1, 0));
  CHECK(std::isfinite(r.nll));
}

TEST_CASE("a streamed task trains exactly as the same data in memory", "[datasets]") {
  using namespace kprior;
  torch::manual_seed(1);
  const auto x = torch::randn({40, 6});
  const auto y = torch::arange(40, torch::kLong) % 2;
  const data::Dataset full{x, y};
  data::Task in_memory{0, "t", full, full, {0, 1}};
  // Streamed: the same batches come from the stream; `train` is only a small sample.
  data::Task streamed{0, "t", full.subset(torch::arange(4)), full, {0, 1}};
  streamed.streamed_examples = full.size();
  streamed.train_stream = [full](int64_t batch_size, uint64_t seed) -> std::unique_ptr<data::BatchSource> {
    return std::make_unique<data::DatasetSource>(data::BatchLoader(full, batch_size, true, seed));
  };
  CHECK(streamed.train_size() == 40);
  auto run = [](const data::Task& task) {
    torch::manual_seed(0);
    auto model = nn::make_model(nn::ModelKind::MLP, {6}, 2, {5});
    // IVON: its ess must be the task's full size, N = 40, not the sample's.
    train::ContinualLearner learner(model, regularize::make_regularizers("finetune", {}),
                                    train::LearnerOptions().optimizer(train::OptimizerKind::IVON).epochs(2).batch_size(8));
    learner.observe(task);
    return torch::cat({model->parameters()[0].flatten(), model->parameters()[2].flatten()});
  };
  const auto a = run(in_memory), b = run(streamed);
  CHECK(torch::equal(a, b));
  // A different ess would have given other weights (the test can fail).
  streamed.streamed_examples = 4;
  CHECK_FALSE(torch::equal(a, run(streamed)));
}

TEST_CASE("split-h5: tasks of classes_per_task classes from an HDF5 array file", "[datasets]") {
  TempDir tmp;
  kprior::testing::write_h5_fixture(tmp.file("data.h5"), 60, 3, 6, 3);
  const auto seq = make_benchmark("split-h5", tmp.path().string(), 7);  // the folder holding data.h5
  REQUIRE(seq.size() == 2);
  CHECK(seq.num_outputs == 6);
  CHECK(seq.tasks[1].classes == std::vector<int64_t>{3, 4, 5});
  CHECK(seq.tasks[0].train.size() + seq.tasks[0].test.size() == 30);
  CHECK(seq.tasks[0].test.size() + seq.tasks[1].test.size() == 12);  // 20% of 60
  // The split does not follow the run's seed: every seed sees the same test set.
  const auto again = make_benchmark("split-h5", tmp.file("data.h5"), 8);
  CHECK(torch::equal(again.tasks[1].test.inputs, seq.tasks[1].test.inputs));
  // Inputs and targets travel together: feature 0 is the class.
  CHECK(torch::equal(seq.tasks[1].train.inputs.select(1, 0).to(torch::kLong), seq.tasks[1].train.targets));
  kprior::testing::write_h5_fixture(tmp.file("odd.h5"), 60, 3, 6, 4);
  CHECK_THAT(file_error([&] { make_benchmark("split-h5", tmp.file("odd.h5"), 0); }), Contains("6 classes cannot form tasks of 4"));
  kprior::testing::write_h5_fixture(tmp.file("one.h5"), 60, 3, 6, 1);
  CHECK_THAT(file_error([&] { make_benchmark("split-h5", tmp.file("one.h5"), 0); }),
             Contains("attribute classes_per_task is 1: a task needs at least 2 classes"));
  // A class id or num_classes far above the examples: refused before anything is sized by it.
  const auto x = std::vector<float>(6, 1.0f);
  {
    H5::H5File f(tmp.file("far.h5"), H5F_ACC_TRUNC);
    kprior::testing::write_h5_array(f, "inputs", H5::PredType::IEEE_F32LE, {3, 2}, x, H5::PredType::NATIVE_FLOAT);
    kprior::testing::write_h5_array(f, "targets", H5::PredType::STD_I64LE, {3},
                                    std::vector<int64_t>{0, int64_t(1) << 62, 1}, H5::PredType::NATIVE_INT64);
  }
  CHECK_THAT(file_error([&] { make_benchmark("split-h5", tmp.file("far.h5"), 0); }),
             Contains("far.h5: 4611686018427387905 classes (attribute num_classes, else the largest class id + 1) "
                      "but 2 training examples"));
  {
    H5::H5File f(tmp.file("many.h5"), H5F_ACC_TRUNC);
    kprior::testing::write_h5_array(f, "inputs", H5::PredType::IEEE_F32LE, {3, 2}, x, H5::PredType::NATIVE_FLOAT);
    kprior::testing::write_h5_array(f, "targets", H5::PredType::STD_I64LE, {3}, std::vector<int64_t>{0, 1, 1},
                                    H5::PredType::NATIVE_INT64);
    const int64_t many = int64_t(1) << 40;
    f.openGroup("/").createAttribute("num_classes", H5::PredType::STD_I64LE, H5::DataSpace(H5S_SCALAR))
        .write(H5::PredType::NATIVE_INT64, &many);
  }
  CHECK_THAT(file_error([&] { make_benchmark("split-h5", tmp.file("many.h5"), 0); }),
             Contains("many.h5: 1099511627776 classes"));
  // Test arrays without class 4: task 2's accuracy would silently leave it out.
  kprior::testing::write_h5_fixture(tmp.file("gap.h5"), 60, 3, 6, 3);
  {
    H5::H5File f(tmp.file("gap.h5"), H5F_ACC_RDWR);
    const std::vector<float> x(5 * 3, 0.5f);
    const std::vector<int64_t> y{0, 1, 2, 3, 5};
    kprior::testing::write_h5_array(f, "test_inputs", H5::PredType::IEEE_F32LE, {5, 3}, x, H5::PredType::NATIVE_FLOAT);
    kprior::testing::write_h5_array(f, "test_targets", H5::PredType::STD_I64LE, {5}, y, H5::PredType::NATIVE_INT64);
  }
  CHECK_THAT(file_error([&] { make_benchmark("split-h5", tmp.file("gap.h5"), 0); }),
             Contains("gap.h5: no test examples of 1 class (4); every class needs test examples"));
}
