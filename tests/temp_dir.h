#pragma once
// A scratch directory removed when the test ends.
#include <ftw.h>
#include <stdio.h>

#include <filesystem>
#include <random>
#include <string>

namespace kprior::testing {

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("kprior-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  // Removed with POSIX nftw, not std::filesystem::remove_all: the pip LibTorch of the GPU
  // machine carries its own copy of libstdc++'s filesystem code, and remove_all crashed there
  // (SIGSEGV in every test whose TempDir was destroyed).
  ~TempDir() { remove_tree(path_.string()); }
  static void remove_tree(const std::string& path) {
    nftw(path.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
         FTW_DEPTH | FTW_PHYS);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace kprior::testing
