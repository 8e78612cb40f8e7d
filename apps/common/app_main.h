#pragma once
// The one place where apps turn exceptions into exit codes: a usage error (bad argument or
// option) prints one line and exits 2; any other error prints one line and exits 1.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <functional>

#include "kprior/core/error.h"

namespace kprior::app {

inline int run_guarded(CLI::App& cli, int argc, char** argv, const std::function<int()>& body) {
  try {
    cli.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return cli.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: error: %s (see --help)\n", cli.get_name().c_str(), e.what());
    return 2;
  }
  try {
    return body();
  } catch (const kprior::UsageError& e) {
    std::fprintf(stderr, "%s: error: %s\n", cli.get_name().c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", cli.get_name().c_str(), e.what());
    return 1;
  }
}

}  // namespace kprior::app
