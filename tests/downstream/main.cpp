// Uses the installed library: split task sequence on a tiny synthetic dataset.
#include <torch/torch.h>

#include <iostream>

#include "kprior/core/version.h"
#include "kprior/data/task_sequence.h"

int main() {
  kprior::data::Dataset d{torch::rand({8, 1, 2, 2}), torch::arange(8) % 4};
  auto seq = kprior::data::make_split_sequence("tiny", d, d, {{0, 1}, {2, 3}}, 4);
  std::cout << "kprior " << kprior::version() << ": " << seq.size() << " tasks, "
            << seq.tasks[1].train.size() << " examples in task 1\n";
  return seq.size() == 2 && seq.tasks[1].train.size() == 4 ? 0 : 1;
}
