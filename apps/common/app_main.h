#pragma once
// The one place where apps turn exceptions into exit codes: a usage error (bad argument or
// option) prints one line and exits 2; any other error prints one line and exits 1.
#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "kprior/core/error.h"
#include "kprior/core/parse.h"

namespace kprior::app {

/// An option check: a whole integer in [low, high] (CLI11's Range also lets "1.5" through to a
/// conversion error, and calls "abc" a FLOAT).
inline CLI::Validator integer_in(int64_t low, int64_t high) {
  return CLI::Validator(
      [low, high](std::string& text) {
        const auto v = kprior::parse_integer<int64_t>(text);
        if (v && *v >= low && *v <= high) return std::string();
        return "'" + text + "' is not an integer from " + std::to_string(low) + " to " + std::to_string(high);
      },
      "");  // no description: --help would show it glued to the type ("INT:INT in [0, 9]=0")
}

/// An option check for an unsigned value (a seed): CLI11 would wrap "-1" to 2^64 − 1.
inline CLI::Validator not_negative() {
  return CLI::Validator(
      [](std::string& text) { return text.rfind('-', 0) == 0 ? std::string("must be >= 0") : std::string(); }, "");
}

/// Written to a terminal, erases the current line (a progress line) and returns to its start.
inline constexpr const char* kClearLine = "\r\x1b[K";

/// Prints "NAME: error: TEXT" on stderr after what stdout holds (in a pipe the two would
/// otherwise interleave out of order); on a terminal, over a progress line left unfinished.
inline void print_error(const std::string& name, const std::string& text) {
  std::fflush(stdout);
  if (isatty(fileno(stdout)) != 0 && isatty(fileno(stderr)) != 0) {
    std::fputs(kClearLine, stdout);
    std::fflush(stdout);
  }
  std::fprintf(stderr, "%s: error: %s\n", name.c_str(), text.c_str());
}

/// Runs `body`, mapping a kprior::UsageError to one line and exit 2 and any other error to one
/// line and exit 1.
inline int guarded(const std::string& name, const std::function<int()>& body) {
  try {
    return body();
  } catch (const kprior::UsageError& e) {
    print_error(name, e.what());
    return 2;
  } catch (const c10::Error& e) {
    // LibTorch's what() appends a C++ stack trace; the user gets the message's first line.
    const std::string msg = e.what_without_backtrace();
    print_error(name, "LibTorch: " + msg.substr(0, msg.find('\n')));
    return 1;
  } catch (const std::exception& e) {
    print_error(name, e.what());
    return 1;
  }
}

/// Creates the output folder `dir` (and its parents); a FileError naming it when that fails
/// (an existing file in the way, no permission), rather than the standard library's text.
inline void create_output_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    throw kprior::FileError(dir, std::filesystem::exists(dir) && !std::filesystem::is_directory(dir)
                                     ? "is a file, not an output folder"
                                     : "cannot create the output folder (" + ec.message() + ")");
  }
}

/// Removes the regular files in `dir` whose names `is_earlier` accepts — an earlier run's
/// outputs, which must not stay beside this run's — and returns their names, sorted and
/// comma-separated ("" for none), for the app's note.
inline std::string remove_earlier_outputs(const std::string& dir,
                                          const std::function<bool(const std::string&)>& is_earlier) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return "";
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto name = e.path().filename().string();
    if (e.is_regular_file(ec) && is_earlier(name)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  std::string removed;
  for (const auto& name : names) {
    if (fs::remove(fs::path(dir) / name, ec)) removed += (removed.empty() ? "" : ", ") + name;
  }
  return removed;
}

inline int run_guarded(CLI::App& cli, int argc, char** argv, const std::function<int()>& body) {
  try {
    cli.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return cli.exit(e);  // --help, --version
  } catch (const CLI::ConfigError& e) {
    // CLI11 says "INI was not able to parse NAME" for a key that is no option.
    const std::string what = e.what(), prefix = "INI was not able to parse ";
    print_error(cli.get_name(), what.rfind(prefix, 0) == 0
                                    ? "the --config file sets '" + what.substr(prefix.size()) + "', which is not an option (see --help)"
                                    : what + " (see --help)");
    return 2;
  } catch (const CLI::ParseError& e) {
    print_error(cli.get_name(), std::string(e.what()) + " (see --help)");
    return 2;
  }
  return guarded(cli.get_name(), body);
}

}  // namespace kprior::app
