#include "kprior/checkpoint/file.h"

#include <H5Cpp.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kprior/core/error.h"
#include "kprior/core/version.h"

namespace kprior::checkpoint {
namespace {

constexpr size_t kHeaderBytes = 512;  // the HDF5 user block
constexpr int kMaxRank = 16;
constexpr int kMaxDepth = 32;
constexpr size_t kMaxObjects = 1 << 20;

// ---- the header in the user block ------------------------------------------------------

struct Header {
  int64_t version = 0;
  uint64_t body_bytes = 0;
  uint32_t crc = 0;
};

uint32_t crc32_of(std::istream& in, uint64_t bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  std::array<char, 1 << 16> buf{};
  uint64_t left = bytes;
  while (left > 0 && in) {
    in.read(buf.data(), static_cast<std::streamsize>(std::min<uint64_t>(left, buf.size())));
    const auto got = static_cast<uint64_t>(in.gcount());
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(got));
    left -= got;
  }
  return static_cast<uint32_t>(crc);
}

std::string header_text(const Header& h) {
  return std::string(kFormatName) + "\nformat_version " + std::to_string(h.version) +
         "\nbody_bytes " + std::to_string(h.body_bytes) + "\ncrc32 " + std::to_string(h.crc) +
         "\nproducer kprior " + version() + "\n";
}

Header parse_header(const std::string& path, const std::string& block) {
  const std::string magic = std::string(kFormatName) + "\n";
  if (block.compare(0, magic.size(), magic) != 0) {
    throw FileError(path, "not a kprior checkpoint (no '" + std::string(kFormatName) + "' header)");
  }
  std::istringstream in(block.substr(magic.size()));
  Header h;
  std::string key;
  bool has_version = false, has_bytes = false, has_crc = false;
  while (in >> key) {
    if (key == "format_version") has_version = static_cast<bool>(in >> h.version);
    else if (key == "body_bytes") has_bytes = static_cast<bool>(in >> h.body_bytes);
    else if (key == "crc32") has_crc = static_cast<bool>(in >> h.crc);
    else if (key == "producer") break;
    else break;
  }
  if (!has_version || !has_bytes || !has_crc) throw FileError(path, "corrupted checkpoint header");
  if (h.version > kFormatVersion) {
    throw FileError(path, "checkpoint format version " + std::to_string(h.version) +
                              " is newer than this kprior reads (" + std::to_string(kFormatVersion) +
                              "); upgrade kprior");
  }
  if (h.version < 1) throw FileError(path, "corrupted checkpoint header (format version " + std::to_string(h.version) + ")");
  return h;
}

// Checks the header, the length and the checksum before HDF5 sees the file.
uint64_t verify_envelope(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    if (std::filesystem::is_directory(path, ec)) throw FileError(path, "is a folder, not a checkpoint file");
    if (std::filesystem::exists(path, ec)) throw FileError(path, "is not a regular file, not a checkpoint file");
    throw FileError(path, "no such checkpoint file");
  }
  const auto size = static_cast<uint64_t>(std::filesystem::file_size(path, ec));
  if (ec) throw FileError(path, "cannot read its size: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path, "cannot open for reading");
  std::string block(kHeaderBytes, '\0');
  in.read(block.data(), static_cast<std::streamsize>(kHeaderBytes));
  if (static_cast<size_t>(in.gcount()) < kHeaderBytes) {
    if (block.compare(0, 17, kFormatName) == 0) throw FileError(path, "truncated checkpoint (" + std::to_string(size) + " bytes)");
    throw FileError(path, "not a kprior checkpoint (" + std::to_string(size) + " bytes, no header)");
  }
  const auto h = parse_header(path, block);
  if (size - kHeaderBytes != h.body_bytes) {
    throw FileError(path, "truncated or extended checkpoint: " + std::to_string(size - kHeaderBytes) +
                              " bytes after the header, the header says " + std::to_string(h.body_bytes));
  }
  if (crc32_of(in, h.body_bytes) != h.crc) throw FileError(path, "corrupted checkpoint (checksum mismatch)");
  return h.body_bytes;
}

// ---- HDF5 ------------------------------------------------------------------------------

const H5::PredType& h5_type(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return H5::PredType::IEEE_F32LE;
    case torch::kFloat64: return H5::PredType::IEEE_F64LE;
    case torch::kInt64: return H5::PredType::STD_I64LE;
    case torch::kUInt8: return H5::PredType::STD_U8LE;
    default: throw Error(std::string("checkpoint: unsupported tensor type ") + c10::toString(t));
  }
}

torch::ScalarType torch_type(const H5::DataType& type, const std::string& path, const std::string& object) {
  const auto cls = type.getClass();
  const auto size = type.getSize();
  if (cls == H5T_FLOAT && size == 4) return torch::kFloat32;
  if (cls == H5T_FLOAT && size == 8) return torch::kFloat64;
  if (cls == H5T_INTEGER && size == 8 && H5::IntType(type.getId()).getSign() == H5T_SGN_2) return torch::kInt64;
  if (cls == H5T_INTEGER && size == 1 && H5::IntType(type.getId()).getSign() == H5T_SGN_NONE) return torch::kUInt8;
  throw FileError(path, "dataset '" + object + "' has an unsupported element type");
}

bool link_exists(const H5::H5File& f, const std::string& path) {
  return H5Lexists(f.getId(), path.c_str(), H5P_DEFAULT) > 0;
}

H5::Group ensure_group(H5::H5File& f, const std::string& group) {
  if (group.empty()) return f.openGroup("/");
  std::string at;
  std::stringstream in(group);
  std::string part;
  while (std::getline(in, part, '/')) {
    at += "/" + part;
    if (!link_exists(f, at)) f.createGroup(at);
  }
  return f.openGroup(at);
}

void write_dataset(H5::H5File& f, const std::string& path, const torch::Tensor& t) {
  const auto slash = path.rfind('/');
  if (slash != std::string::npos) ensure_group(f, path.substr(0, slash));
  std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
  const H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
  H5::DSetCreatPropList plist;
  if (t.numel() > 0 && !dims.empty()) {
    plist.setChunk(static_cast<int>(dims.size()), dims.data());  // one chunk: the whole tensor
    plist.setFletcher32();                                          // its checksum, checked on read
  }
  auto ds = f.createDataSet("/" + path, h5_type(t.scalar_type()), space, plist);
  if (t.numel() > 0) ds.write(t.data_ptr(), h5_type(t.scalar_type()));
}

void write_attribute(H5::H5File& f, const std::string& path, const Attribute& value) {
  const auto at = path.find('@');
  auto group = ensure_group(f, path.substr(0, at));
  const auto name = path.substr(at + 1);
  const H5::DataSpace scalar(H5S_SCALAR);
  if (const auto* i = std::get_if<int64_t>(&value)) {
    group.createAttribute(name, H5::PredType::STD_I64LE, scalar).write(H5::PredType::NATIVE_INT64, i);
  } else if (const auto* d = std::get_if<double>(&value)) {
    group.createAttribute(name, H5::PredType::IEEE_F64LE, scalar).write(H5::PredType::NATIVE_DOUBLE, d);
  } else {
    const H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
    group.createAttribute(name, type, scalar).write(type, std::get<std::string>(value));
  }
}

// Walks the file; with `tree` null it only parses and reads (the validation pass in a child
// process, which must not touch LibTorch's thread pools).
struct Reader {
  std::string path;
  uint64_t budget;  // bytes any dataset may claim: the file's size (no compression is used)
  Tree* tree;
  size_t objects = 0;

  void read_attributes(H5::Group& g, const std::string& group) {
    const int n = g.getNumAttrs();
    for (int i = 0; i < n; ++i) {
      auto a = g.openAttribute(static_cast<unsigned>(i));
      const auto name = (group.empty() ? "" : group) + "@" + a.getName();
      const auto cls = a.getTypeClass();
      if (a.getSpace().getSimpleExtentNpoints() != 1) throw FileError(path, "attribute '" + name + "' is not a scalar");
      if (cls == H5T_INTEGER) {
        int64_t v = 0;
        a.read(H5::PredType::NATIVE_INT64, &v);
        if (tree) tree->put_attr(name, v);
      } else if (cls == H5T_FLOAT) {
        double v = 0;
        a.read(H5::PredType::NATIVE_DOUBLE, &v);
        if (tree) tree->put_attr(name, v);
      } else if (cls == H5T_STRING) {
        const auto type = a.getStrType();
        if (!type.isVariableStr()) throw FileError(path, "attribute '" + name + "' is not a variable-length string");
        std::string v;
        a.read(type, v);
        if (tree) tree->put_attr(name, v);
      } else {
        throw FileError(path, "attribute '" + name + "' has an unsupported type");
      }
    }
  }

  void read_dataset(H5::Group& g, const std::string& name, const std::string& object) {
    auto ds = g.openDataSet(name);
    const auto space = ds.getSpace();
    const int rank = space.getSimpleExtentNdims();
    if (rank < 0 || rank > kMaxRank) throw FileError(path, "dataset '" + object + "' has rank " + std::to_string(rank));
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    if (rank > 0) space.getSimpleExtentDims(dims.data());
    const auto type = torch_type(ds.getDataType(), path, object);
    const uint64_t elem = c10::elementSize(type);
    uint64_t numel = 1;
    std::vector<int64_t> sizes;
    for (auto d : dims) {
      if (d != 0 && numel > budget / d) throw FileError(path, "dataset '" + object + "' claims more data than the file holds");
      numel *= d;
      sizes.push_back(static_cast<int64_t>(d));
    }
    if (numel * elem > budget) throw FileError(path, "dataset '" + object + "' claims more data than the file holds");
    std::vector<uint8_t> buffer(static_cast<size_t>(numel * elem));
    if (numel > 0) ds.read(buffer.data(), h5_type(type));
    if (tree) {
      tree->put(object, torch::from_blob(buffer.data(), sizes, torch::TensorOptions().dtype(type)));
    }
  }

  void visit(H5::Group& g, const std::string& group, int depth) {
    if (depth > kMaxDepth) throw FileError(path, "groups nested deeper than " + std::to_string(kMaxDepth));
    read_attributes(g, group);
    const hsize_t n = g.getNumObjs();
    for (hsize_t i = 0; i < n; ++i) {
      if (++objects > kMaxObjects) throw FileError(path, "more than " + std::to_string(kMaxObjects) + " objects");
      const auto name = g.getObjnameByIdx(i);
      const auto object = group.empty() ? name : group + "/" + name;
      const auto type = g.childObjType(name);
      if (type == H5O_TYPE_GROUP) {
        auto child = g.openGroup(name);
        visit(child, object, depth + 1);
      } else if (type == H5O_TYPE_DATASET) {
        read_dataset(g, name, object);
      } else {
        throw FileError(path, "object '" + object + "' is neither a group nor a dataset");
      }
    }
  }
};

// HDF5 1.10 can crash on crafted input that passes the checksum (a forged file: the checksum
// guards against accidents, not against intent). So the file is parsed once in a forked child
// first: a crash or a hang there becomes an error here, never a crash of the caller. The child
// only runs HDF5 and plain allocations (no LibTorch), then _exits.
void parse_in_child(const std::string& path, uint64_t budget) {
  int fds[2];
  if (::pipe(fds) != 0) throw FileError(path, "cannot create a pipe to validate the file");
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw FileError(path, "cannot fork to validate the file");
  }
  if (pid == 0) {
    // Die by the signal if HDF5 crashes: no inherited handler (a test framework's, say) may
    // run in this copy of the caller.
    for (const int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}) ::signal(sig, SIG_DFL);
    ::close(fds[0]);
    std::string error;
    try {
      H5::H5File f(path, H5F_ACC_RDONLY);
      auto root = f.openGroup("/");
      Reader r{path, budget, nullptr};
      r.visit(root, "", 0);
    } catch (const H5::Exception& e) {
      error = "unreadable HDF5 content: " + e.getDetailMsg();
    } catch (const FileError& e) {
      error = e.what();
      const auto prefix = path + ": ";
      if (error.compare(0, prefix.size(), prefix) == 0) error = error.substr(prefix.size());
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (!error.empty()) {
      const auto n = ::write(fds[1], error.data(), error.size());
      (void)n;
    }
    ::_exit(error.empty() ? 0 : 1);
  }
  ::close(fds[1]);
  std::string message;
  char buf[512];
  bool hung = false;
  // Parsing runs at well over 50 MB/s; allow 10 s plus that rate before calling it a hang.
  const int timeout_ms = static_cast<int>(std::min<uint64_t>(10000 + budget / 50000, 600000));
  for (;;) {
    pollfd p{fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, timeout_ms);
    if (ready == 0) {
      hung = true;
      break;
    }
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    const auto n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    message.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  if (hung) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (hung) throw FileError(path, "corrupted HDF5 content (parsing did not finish)");
  if (WIFSIGNALED(status)) throw FileError(path, "corrupted HDF5 content (the HDF5 library failed on it)");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw FileError(path, message.empty() ? "corrupted HDF5 content" : message);
  }
}

void fsync_path(const std::string& p, int flags) {
  const int fd = ::open(p.c_str(), flags);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void write(const Tree& content, const std::string& path) {
  H5::Exception::dontPrint();
  Tree tree = content;  // shares the tensors
  tree.put_attr("@format", std::string(kFormatName));
  tree.put_attr("@format_version", kFormatVersion);
  tree.put_attr("@producer", "kprior " + std::string(version()));
  const auto tmp = path + ".tmp-" + std::to_string(::getpid());
  try {
    H5::FileCreatPropList fcpl;
    fcpl.setUserblock(kHeaderBytes);
    H5::FileAccPropList fapl;
    fapl.setLibverBounds(H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);  // checksummed metadata
    H5::H5File f(tmp, H5F_ACC_TRUNC, fcpl, fapl);
    for (const auto& [p, t] : tree.tensors()) write_dataset(f, p, t);
    for (const auto& [p, a] : tree.attributes()) write_attribute(f, p, a);
    f.close();
  } catch (const H5::Exception& e) {
    std::remove(tmp.c_str());
    throw FileError(path, "HDF5 could not write the checkpoint: " + e.getDetailMsg());
  } catch (...) {
    std::remove(tmp.c_str());  // e.g. a tensor type the format has no HDF5 type for: no debris
    throw;
  }
  std::error_code ec;
  const auto body = static_cast<uint64_t>(std::filesystem::file_size(tmp, ec)) - kHeaderBytes;
  Header h{kFormatVersion, body, 0};
  {
    std::ifstream in(tmp, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(kHeaderBytes));
    h.crc = crc32_of(in, body);
  }
  auto text = header_text(h);
  text.resize(kHeaderBytes, '\0');
  {
    std::fstream io(tmp, std::ios::binary | std::ios::in | std::ios::out);
    io.write(text.data(), static_cast<std::streamsize>(text.size()));
    io.flush();
    if (!io) {
      std::remove(tmp.c_str());
      throw FileError(path, "could not write the checkpoint header");
    }
  }
  fsync_path(tmp, O_RDONLY);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw FileError(path, "could not move the new checkpoint into place");
  }
  const auto dir = std::filesystem::path(path).parent_path();
  fsync_path(dir.empty() ? "." : dir.string(), O_RDONLY | O_DIRECTORY);
}

Tree read(const std::string& path) {
  H5::Exception::dontPrint();
  const auto body = verify_envelope(path);
  parse_in_child(path, body);
  Tree tree(path);
  Reader r{path, body, &tree};
  try {
    H5::H5File f(path, H5F_ACC_RDONLY);
    auto root = f.openGroup("/");
    r.visit(root, "", 0);
  } catch (const H5::Exception& e) {
    throw FileError(path, "unreadable HDF5 content: " + e.getDetailMsg());
  }
  if (!tree.has_attr("@format") || tree.text("@format") != kFormatName) {
    throw FileError(path, "not a kprior checkpoint (root attribute 'format' is not '" + std::string(kFormatName) + "')");
  }
  if (tree.integer("@format_version") > kFormatVersion) {
    throw FileError(path, "checkpoint format version " + std::to_string(tree.integer("@format_version")) +
                              " is newer than this kprior reads; upgrade kprior");
  }
  return tree;
}

}  // namespace kprior::checkpoint
