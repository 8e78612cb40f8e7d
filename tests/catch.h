#pragma once
// Catch2 v3 (GPU machine) and v2 (Debian 12) from one include.
#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_approx.hpp>
#include <catch2/catch_message.hpp>  // INFO, WARN, CAPTURE
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <string>
using Catch::Approx;
namespace Catch::Matchers {
// v3 renamed the substring matcher; the tests use v2's name.
inline StringContainsMatcher Contains(const std::string& text,
                                      CaseSensitive cs = CaseSensitive::Yes) {
  return ContainsSubstring(text, cs);
}
}  // namespace Catch::Matchers
#else
#include <catch2/catch.hpp>
#endif
