#include "plot.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>

#include "kprior/core/error.h"

namespace kprior::app {
namespace {

bool is_file(const std::string& path) { return !path.empty() && ::access(path.c_str(), R_OK) == 0; }

// Runs argv[0] (searched on PATH) with argv; returns its exit status (-1 when it could not
// start or died of a signal). quiet: its stdout and stderr go to /dev/null; otherwise its
// stdout passes through and its stderr is collected into *err (when err is not null).
int run_child(const std::vector<std::string>& argv, bool quiet, std::string* err = nullptr) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // What the app printed so far must come before the child's output.
  std::fflush(stdout);
  std::fflush(stderr);
  int pipe_fds[2] = {-1, -1};
  if (!quiet && err != nullptr && ::pipe(pipe_fds) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (quiet) {
      const int null = ::open("/dev/null", O_WRONLY);
      if (null >= 0) {
        ::dup2(null, 1);
        ::dup2(null, 2);
      }
    } else if (pipe_fds[1] >= 0) {
      ::dup2(pipe_fds[1], 2);
      ::close(pipe_fds[0]);
      ::close(pipe_fds[1]);
    }
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  if (pipe_fds[0] >= 0) {
    ::close(pipe_fds[1]);
    char buf[4096];
    ssize_t n;
    while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
      if (n > 0) err->append(buf, static_cast<size_t>(n));
    }
    ::close(pipe_fds[0]);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The last non-empty line of `text` (a Python traceback ends with the error itself).
std::string last_line(const std::string& text) {
  size_t end = text.find_last_not_of(" \n\r\t");
  if (end == std::string::npos) return {};
  const size_t start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
}

std::string executable_dir() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  std::string path(buf, static_cast<size_t>(n));
  return path.substr(0, path.find_last_of('/'));
}

std::string find_script() {
  if (const char* env = std::getenv("KPRIOR_PLOT_SCRIPT")) {
    if (!is_file(env)) throw UsageError(std::string("KPRIOR_PLOT_SCRIPT: no readable file ") + env);
    return env;
  }
  const std::string installed = executable_dir() + "/../share/kprior/kprior_plot.py";
  if (is_file(installed)) return installed;
  if (is_file(KPRIOR_SOURCE_PLOT_SCRIPT)) return KPRIOR_SOURCE_PLOT_SCRIPT;
  throw UsageError("--plot: kprior_plot.py not found (set KPRIOR_PLOT_SCRIPT to notebooks/kprior_plot.py)");
}

}  // namespace

Plotter find_plotter() {
  const std::string script = find_script();
  if (const char* env = std::getenv("KPRIOR_PYTHON")) {
    // Named explicitly: use it or say why not, never fall back silently.
    if (run_child({env, script, "check"}, true) == 0) return {env, script};
    throw UsageError(std::string("--plot: KPRIOR_PYTHON=") + env +
                     " cannot run kprior_plot.py (it needs numpy and matplotlib)");
  }
  std::vector<std::string> candidates;
  candidates.emplace_back("python3");
  candidates.emplace_back("/usr/bin/python3");
  for (const auto& python : candidates) {
    if (run_child({python, script, "check"}, true) == 0) return {python, script};
  }
  throw UsageError("--plot needs Python 3 with numpy and matplotlib (Debian: apt-get install "
                   "python3-matplotlib; or set KPRIOR_PYTHON to an interpreter that has them)");
}

void draw(const Plotter& plotter, const std::string& command, const std::string& dir,
          const std::string& png, const std::vector<std::string>& extra) {
  std::vector<std::string> argv{plotter.python, plotter.script, command, dir, "--out", png};
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::string err;
  const int rc = run_child(argv, false, &err);
  if (rc != 0) {
    const auto why = last_line(err);
    throw Error("--plot: " + plotter.script + " " + command + " failed (exit " + std::to_string(rc) + ")" +
                (why.empty() ? "" : ": " + why));
  }
  if (!err.empty()) std::fputs(err.c_str(), stderr);  // warnings of a successful plot
}

}  // namespace kprior::app
