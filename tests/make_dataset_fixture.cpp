// Writes a tiny dataset in a real on-disk format, for the command-line tests:
//   make_dataset_fixture cifar DIR   CIFAR-10 (1 record per class per batch) and CIFAR-100
//                                    (1 per class) under DIR/cifar-10-batches-bin, DIR/cifar-100-binary
//   make_dataset_fixture tiny DIR    a TinyImageNet-layout JPEG tree of 20 classes (2 training
//                                    and 1 validation image each) in DIR/tiny-imagenet-200
//   make_dataset_fixture imagenet DIR an ImageNet-layout (ImageFolder) JPEG tree of 20 classes
//                                    (2 training and 1 validation image each) in DIR/imagenet
//   make_dataset_fixture h5 DIR      an HDF5 array file DIR/data.h5: 80 examples, 10 features,
//                                    4 classes, 2 per task
//   make_dataset_fixture cifar100-learnable DIR
//                                    a CIFAR-100 that can be learned: each class one colour
//                                    plus noise, 10 training and 5 test images per class
#include <cstdio>
#include <string>

#include "dataset_fixtures.h"

namespace {
const char* const kUsage =
    "usage: make_dataset_fixture KIND DIR   writes a tiny dataset in its real on-disk format under DIR\n"
    "  cifar               CIFAR-10 (1 record per class per batch) and CIFAR-100 (1 per class):\n"
    "                      DIR/cifar-10-batches-bin, DIR/cifar-100-binary\n"
    "  tiny                TinyImageNet layout, 20 classes (2 train, 1 val image each): DIR/tiny-imagenet-200\n"
    "  imagenet            ImageFolder layout, 20 classes (2 train, 1 val image each): DIR/imagenet\n"
    "  h5                  HDF5 arrays, 80 examples, 10 features, 4 classes, 2 per task: DIR/data.h5\n"
    "  cifar100-learnable  CIFAR-100, each class one colour plus noise (10 train, 5 test per class)\n";
}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (argc != 3) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string kind = argv[1], dir = argv[2];
  if (kind == "cifar") {
    kprior::testing::write_cifar10_fixture(dir, 1);
    kprior::testing::write_cifar100_fixture(dir, 1);
  } else if (kind == "tiny") {
    kprior::testing::write_jpeg_tree(dir + "/tiny-imagenet-200", 20, 2, 1, true, 16);
  } else if (kind == "imagenet") {
    kprior::testing::write_jpeg_tree(dir + "/imagenet", 20, 2, 1, false, 16);
  } else if (kind == "cifar100-learnable") {
    kprior::testing::write_learnable_cifar100(dir, 10, 5);
  } else if (kind == "h5") {
    std::filesystem::create_directories(dir);
    kprior::testing::write_h5_fixture(dir + "/data.h5", 80, 10, 4, 2);
  } else {
    std::fprintf(stderr, "make_dataset_fixture: unknown kind '%s'\n", kind.c_str());
    return 2;
  }
  return 0;
}
