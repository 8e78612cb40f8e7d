#pragma once
// The message of the kprior::FileError a call throws, for checks on what it names.
#include <string>

#include "catch.h"
#include "kprior/core/error.h"

namespace kprior::testing {

/// The message of the FileError that `f` throws (fails the test if it throws none).
template <typename F>
std::string file_error(F&& f) {
  try {
    f();
  } catch (const kprior::FileError& e) {
    return e.what();
  }
  FAIL("no FileError thrown");
  return {};
}

}  // namespace kprior::testing
