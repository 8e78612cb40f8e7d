#pragma once
// The binary versions of CIFAR-10 and CIFAR-100 (Krizhevsky, "Learning Multiple Layers of
// Features from Tiny Images", 2009; https://www.cs.toronto.edu/~kriz/cifar.html):
//   CIFAR-10   cifar-10-batches-bin/data_batch_1.bin .. data_batch_5.bin (10,000 records each)
//              and test_batch.bin; a record is 1 label byte (0–9) + 3,072 pixel bytes;
//   CIFAR-100  cifar-100-binary/train.bin (50,000 records) and test.bin (10,000); a record is
//              1 coarse label byte (0–19), 1 fine label byte (0–99) + 3,072 pixel bytes.
// Pixels are 32x32 per channel, channels R, G, B one after the other (CHW), rows top first.
#include <string>
#include <vector>

#include "kprior/data/channel_stats.h"
#include "kprior/data/dataset.h"

namespace kprior::data {

/// The layout of one CIFAR record.
struct CifarFormat {
  int label_bytes = 1;      // 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine)
  int label_index = 0;      // which of the label bytes is the class
  int64_t num_classes = 10;  // labels must be below this
  int64_t record_bytes() const { return label_bytes + 3 * 32 * 32; }
};

CifarFormat cifar10_format();
/// `fine` = true: the 100 fine classes; false: the 20 coarse superclasses.
CifarFormat cifar100_format(bool fine = true);

/// Reads the records of `files`, in order, into inputs float32 [N, 3, 32, 32] in [0, 1] and
/// int64 targets. Throws FileError naming the file when it is missing, empty, not a whole
/// number of records long, or has a label >= the format's num_classes.
Dataset read_cifar_records(const std::vector<std::string>& files, const CifarFormat& format);

/// The folder holding the CIFAR-10 binary files: `data_dir` itself when it has
/// data_batch_1.bin or test_batch.bin, else data_dir/cifar-10-batches-bin, else
/// data_dir/cifar10 (and data_dir/cifar10/cifar-10-batches-bin). FileError if none has them.
std::string find_cifar10_dir(const std::string& data_dir);
/// As find_cifar10_dir for CIFAR-100 (train.bin / test.bin; cifar-100-binary, cifar100).
std::string find_cifar100_dir(const std::string& data_dir);

/// CIFAR-10 from `dir` (the folder with the .bin files): Split::Train reads all five training
/// batches. With `normalize`, channels are normalised by cifar10_stats().
Dataset load_cifar10(const std::string& dir, Split split, bool normalize = true);
/// CIFAR-100 from `dir`: fine (or coarse) labels; normalised by cifar100_stats().
Dataset load_cifar100(const std::string& dir, Split split, bool fine = true, bool normalize = true);

}  // namespace kprior::data
