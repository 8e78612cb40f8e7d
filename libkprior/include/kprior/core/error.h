#pragma once
// kprior's exception types. Every error names the file, field or argument at fault and what
// was expected; apps turn UsageError into exit code 2 and every other Error into exit code 1.
#include <stdexcept>
#include <string>

namespace kprior {

/// Base of every exception the library throws on bad input or failed I/O.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// A caller passed an invalid option or argument (apps: exit code 2).
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message) {}
};

/// A file could not be read or written, or its content is not what was expected.
class FileError : public Error {
 public:
  FileError(const std::string& path, const std::string& problem);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Throws UsageError("<what> must be a finite number > 0, got <value>") unless `value` is
/// finite and positive. A NaN or infinite setting would only show up as a diverged run, after
/// a whole task.
void require_positive(const std::string& what, double value);

/// As require_positive, for settings that may be 0.
void require_non_negative(const std::string& what, double value);

}  // namespace kprior
