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
// start or died of a signal). quiet: its stdout and stderr go to /dev/null.
int run_child(const std::vector<std::string>& argv, bool quiet) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // What the app printed so far must come before the child's output.
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (quiet) {
      const int null = ::open("/dev/null", O_WRONLY);
      if (null >= 0) {
        ::dup2(null, 1);
        ::dup2(null, 2);
      }
    }
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
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
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("KPRIOR_PYTHON")) candidates.emplace_back(env);
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
  const int rc = run_child(argv, false);
  if (rc != 0) {
    throw Error("--plot: " + plotter.script + " " + command + " failed (exit " + std::to_string(rc) + ")");
  }
}

}  // namespace kprior::app
