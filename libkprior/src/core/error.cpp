#include "kprior/core/error.h"

#include <cmath>

#include <fmt/format.h>

namespace kprior {

FileError::FileError(const std::string& path, const std::string& problem)
    : Error(path + ": " + problem), path_(path) {}

void require_positive(const std::string& what, double value) {
  if (!(std::isfinite(value) && value > 0)) throw UsageError(fmt::format("{} must be a finite number > 0, got {}", what, value));
}

void require_non_negative(const std::string& what, double value) {
  if (!(std::isfinite(value) && value >= 0)) {
    throw UsageError(fmt::format("{} must be a finite number >= 0, got {}", what, value));
  }
}

}  // namespace kprior
