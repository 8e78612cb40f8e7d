// Test helper for the kill test (test_checkpoint.cpp): writes checkpoints to argv[1] in an
// endless loop, generation g holding a large tensor filled with g, until it is killed.
#include <torch/torch.h>

#include <cstdio>
#include <string>

#include "kprior/checkpoint/file.h"

int main(int argc, char** argv) {
  // It never stops by itself: anything but one file path (e.g. --help) gets the usage, not an
  // endless stream of checkpoints written under that name.
  if (argc != 2 || argv[1][0] == '-') {
    std::fputs("usage: checkpoint_writer FILE   (writes checkpoints to FILE until killed; for the kill test)\n", stderr);
    return 2;
  }
  for (int64_t g = 0;; ++g) {
    kprior::checkpoint::Tree tree;
    tree.put_attr("@content", std::string("kill-test"));
    tree.put_attr("gen@value", g);
    tree.put("payload/values", torch::full({1 << 21}, static_cast<double>(g), torch::kFloat32));
    kprior::checkpoint::write(tree, argv[1]);
  }
}
