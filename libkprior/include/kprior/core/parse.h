#pragma once
// Whole-string integer parsing for user input (files, options): the value only if the text is
// exactly one integer of the type's range — no sign for unsigned types, no '+', no spaces, no
// trailing characters — else nullopt, so callers name the bad token in their own error.
#include <charconv>
#include <optional>
#include <string>
#include <system_error>

namespace kprior {

template <typename Int>
std::optional<Int> parse_integer(const std::string& text) {
  Int value{};
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end) return std::nullopt;
  return value;
}

}  // namespace kprior
