#pragma once
// Reading and writing checkpoint files (docs/checkpoint-format.md). A file is an HDF5 file
// with a 512-byte user block in front (HDF5 and h5py skip it) that holds a magic line, the
// format version and a CRC-32 of everything after the block: the loader checks those before
// HDF5 parses a byte, so a truncated, corrupted, foreign or newer file is refused with one
// clear error and never reaches the HDF5 parser.
#include <string>

#include "kprior/checkpoint/tree.h"

namespace kprior::checkpoint {

inline constexpr int64_t kFormatVersion = 1;
inline constexpr const char* kFormatName = "kprior-checkpoint";

/// Writes `tree` to `path` atomically: a temporary file in the same directory, flushed and
/// fsync'ed, then renamed over `path` (a crash leaves either the old or the new file).
/// Throws kprior::FileError on I/O failure.
void write(const Tree& tree, const std::string& path);

/// Reads and validates a checkpoint. Throws kprior::FileError naming the file and the problem
/// (missing, truncated, corrupted, not a kprior checkpoint, newer format, forged sizes).
Tree read(const std::string& path);

}  // namespace kprior::checkpoint
