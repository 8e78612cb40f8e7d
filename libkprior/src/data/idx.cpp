#include "kprior/data/idx.h"

#include <zlib.h>

#include <array>
#include <cstring>
#include <limits>
#include <memory>

#include "kprior/core/error.h"

namespace kprior::data {
namespace {

// Files larger than this are refused before they exhaust memory (a forged header cannot make
// the reader allocate more than the file really holds: data are read in chunks).
constexpr uint64_t kMaxFileBytes = uint64_t{16} << 30;  // 16 GiB
constexpr int kMaxRank = 16;

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzHandle = std::unique_ptr<gzFile_s, GzCloser>;

bool valid_type(uint8_t t) {
  switch (t) {
    case 0x08: case 0x09: case 0x0B: case 0x0C: case 0x0D: case 0x0E: return true;
    default: return false;
  }
}

// Reads the whole (decompressed) content. zlib reads plain files transparently.
std::vector<uint8_t> read_all(const std::string& path) {
  GzHandle file(gzopen(path.c_str(), "rb"));
  if (!file) throw FileError(path, "cannot open for reading (missing or not permitted)");
  std::vector<uint8_t> out;
  std::array<uint8_t, 1 << 16> chunk{};
  for (;;) {
    const int n = gzread(file.get(), chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      const char* msg = gzerror(file.get(), &code);
      throw FileError(path, std::string("corrupt gzip stream (") + msg + ")");
    }
    if (n == 0) break;
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
    if (out.size() > kMaxFileBytes) throw FileError(path, "larger than 16 GiB; refusing to read");
  }
  int code = 0;
  const char* msg = gzerror(file.get(), &code);
  // A gzip stream cut short reads as a clean end of data with Z_BUF_ERROR set.
  if (code != Z_OK && code != Z_STREAM_END) {
    throw FileError(path, std::string("truncated or corrupt gzip stream (") + msg + ")");
  }
  return out;
}

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void write_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

// IDX stores elements big-endian; swap every element between file and host order.
void swap_elements(std::vector<uint8_t>& bytes, size_t element) {
  if (element == 1) return;
  const uint16_t probe = 1;
  uint8_t first = 0;
  std::memcpy(&first, &probe, 1);
  if (first == 0) return;  // host is big-endian: nothing to do
  for (size_t i = 0; i + element <= bytes.size(); i += element) {
    for (size_t a = i, b = i + element - 1; a < b; ++a, --b) std::swap(bytes[a], bytes[b]);
  }
}

std::string hex(uint8_t v) {
  static const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[v >> 4] + digits[v & 15];
}

}  // namespace

size_t idx_element_size(IdxType type) {
  switch (type) {
    case IdxType::UInt8: case IdxType::Int8: return 1;
    case IdxType::Int16: return 2;
    case IdxType::Int32: case IdxType::Float32: return 4;
    case IdxType::Float64: return 8;
  }
  throw UsageError("idx_element_size: unknown IDX element type");
}

int64_t IdxArray::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

IdxArray read_idx(const std::string& path) {
  std::vector<uint8_t> raw = read_all(path);
  if (raw.size() < 4) {
    throw FileError(path, "not an IDX file: " + std::to_string(raw.size()) +
                              " bytes, shorter than the 4-byte magic number");
  }
  if (raw[0] != 0 || raw[1] != 0) {
    throw FileError(path, "wrong magic number: first two bytes are " + hex(raw[0]) + " " +
                              hex(raw[1]) + ", expected 0x00 0x00 (is this an IDX file?)");
  }
  if (!valid_type(raw[2])) {
    throw FileError(path, "wrong magic number: unknown element type " + hex(raw[2]) +
                              " (expected 0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e)");
  }
  const int rank = raw[3];
  if (rank == 0 || rank > kMaxRank) {
    throw FileError(path, "rank " + std::to_string(rank) + " in the magic number; expected 1.." +
                              std::to_string(kMaxRank));
  }
  const size_t header = 4 + 4 * static_cast<size_t>(rank);
  if (raw.size() < header) {
    throw FileError(path, "truncated header: rank " + std::to_string(rank) + " needs " +
                              std::to_string(header) + " bytes, file has " +
                              std::to_string(raw.size()));
  }
  IdxArray array;
  array.type = static_cast<IdxType>(raw[2]);
  const size_t element = idx_element_size(array.type);
  // Check the size the header promises against the bytes really present, with overflow care.
  uint64_t expected = element;
  for (int i = 0; i < rank; ++i) {
    const uint32_t d = read_be32(&raw[4 + 4 * static_cast<size_t>(i)]);
    array.dims.push_back(d);
    if (d != 0 && expected > std::numeric_limits<uint64_t>::max() / d) {
      throw FileError(path, "dimensions overflow 64 bits; the header is corrupt");
    }
    expected *= d;
  }
  const uint64_t present = raw.size() - header;
  if (present < expected) {
    throw FileError(path, "truncated: the header promises " + std::to_string(expected) +
                              " bytes of data, the file has " + std::to_string(present));
  }
  if (present > expected) {
    throw FileError(path, "corrupt: " + std::to_string(present - expected) +
                              " trailing bytes after the " + std::to_string(expected) +
                              " bytes of data the header promises");
  }
  array.bytes.assign(raw.begin() + static_cast<std::ptrdiff_t>(header), raw.end());
  swap_elements(array.bytes, element);
  return array;
}

void write_idx(const std::string& path, const IdxArray& array, bool gzip) {
  if (array.dims.empty() || array.dims.size() > static_cast<size_t>(kMaxRank)) {
    throw UsageError("write_idx(" + path + "): rank must be 1.." + std::to_string(kMaxRank));
  }
  for (int64_t d : array.dims) {
    if (d < 0 || d > std::numeric_limits<uint32_t>::max()) {
      throw UsageError("write_idx(" + path + "): dimension " + std::to_string(d) +
                       " does not fit an IDX uint32");
    }
  }
  const size_t element = idx_element_size(array.type);
  if (static_cast<uint64_t>(array.numel()) * element != array.bytes.size()) {
    throw UsageError("write_idx(" + path + "): " + std::to_string(array.bytes.size()) +
                     " bytes do not match the dimensions");
  }
  std::vector<uint8_t> out{0, 0, static_cast<uint8_t>(array.type),
                           static_cast<uint8_t>(array.dims.size())};
  for (int64_t d : array.dims) write_be32(out, static_cast<uint32_t>(d));
  std::vector<uint8_t> body = array.bytes;
  swap_elements(body, element);
  out.insert(out.end(), body.begin(), body.end());

  // "wb9" compresses; "wbT" writes the bytes through uncompressed.
  GzHandle file(gzopen(path.c_str(), gzip ? "wb9" : "wbT"));
  if (!file) throw FileError(path, "cannot open for writing");
  size_t done = 0;
  while (done < out.size()) {
    const auto n = static_cast<unsigned>(std::min<size_t>(out.size() - done, 1u << 30));
    if (gzwrite(file.get(), out.data() + done, n) != static_cast<int>(n)) {
      throw FileError(path, "write failed (disk full?)");
    }
    done += n;
  }
  if (gzclose(file.release()) != Z_OK) throw FileError(path, "write failed on close");
}

}  // namespace kprior::data
