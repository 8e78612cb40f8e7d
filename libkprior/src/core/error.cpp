#include "kprior/core/error.h"

namespace kprior {

FileError::FileError(const std::string& path, const std::string& problem)
    : Error(path + ": " + problem), path_(path) {}

}  // namespace kprior
