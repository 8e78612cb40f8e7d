// The apps' error contract (apps/common/app_main.h): one line on stderr and the exit code —
// also for LibTorch's own errors, whose what() carries a multi-line C++ stack trace.
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <fstream>
#include <sstream>
#include <string>

#include "app_main.h"
#include "catch.h"
#include "temp_dir.h"

namespace {

// Runs body under kprior::app::guarded with stderr captured; returns {exit code, stderr}.
std::pair<int, std::string> guarded_stderr(const std::function<int()>& body) {
  kprior::testing::TempDir dir;
  const std::string path = dir.file("stderr.txt");
  std::fflush(stderr);
  const int saved = ::dup(2);
  std::FILE* f = std::fopen(path.c_str(), "w");
  ::dup2(::fileno(f), 2);
  const int rc = kprior::app::guarded("app", body);
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::fclose(f);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return {rc, text.str()};
}

}  // namespace

TEST_CASE("apps report usage errors, runtime errors and LibTorch errors in one line", "[core]") {
  auto [rc_usage, usage] = guarded_stderr([]() -> int { throw kprior::UsageError("bad option"); });
  CHECK(rc_usage == 2);
  CHECK(usage == "app: error: bad option\n");
  auto [rc_file, file] = guarded_stderr([]() -> int { throw kprior::FileError("x.h5", "is truncated"); });
  CHECK(rc_file == 1);
  CHECK(std::count(file.begin(), file.end(), '\n') == 1);
  auto [rc_torch, torch_err] = guarded_stderr([] {
    (void)torch::linalg::inv(torch::zeros({2, 2}));  // c10::LinAlgError, what() with a backtrace
    return 0;
  });
  CHECK(rc_torch == 1);
  CHECK(std::count(torch_err.begin(), torch_err.end(), '\n') == 1);
  INFO(torch_err);
  CHECK(torch_err.rfind("app: error: LibTorch: linalg.inv: The diagonal element 1 is zero", 0) == 0);
}
