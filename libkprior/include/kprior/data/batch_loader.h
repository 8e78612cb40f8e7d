#pragma once
// Mini-batches over a Dataset with seeded shuffling. The dataset is never copied: an epoch is
// a permutation of indices, and each batch gathers its rows with index_select.
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "kprior/data/dataset.h"

namespace kprior::data {

struct Batch {
  torch::Tensor inputs;
  torch::Tensor targets;
  torch::Tensor indices;  // int64 positions of the rows in the dataset
};

class BatchLoader {
 public:
  /// `seed` fixes every epoch's order: epoch e uses random_permutation(N, mix_seed(seed, e)).
  BatchLoader(Dataset data, int64_t batch_size, bool shuffle = true, uint64_t seed = 0,
              bool drop_last = false);

  int64_t num_batches() const;
  int64_t batch_size() const { return batch_size_; }
  const Dataset& dataset() const { return data_; }

  /// Sets the epoch whose order batch() uses (reshuffles when shuffling).
  void set_epoch(int64_t epoch);
  /// Batch `b` (0 <= b < num_batches()) of the current epoch.
  Batch batch(int64_t b) const;

  class Iterator {
   public:
    Iterator(const BatchLoader* loader, int64_t b) : loader_(loader), b_(b) {}
    Batch operator*() const { return loader_->batch(b_); }
    Iterator& operator++() { ++b_; return *this; }
    bool operator!=(const Iterator& o) const { return b_ != o.b_; }

   private:
    const BatchLoader* loader_;
    int64_t b_;
  };
  /// Range over the current epoch: `for (const Batch& b : loader) ...`.
  Iterator begin() const { return {this, 0}; }
  Iterator end() const { return {this, num_batches()}; }

 private:
  Dataset data_;
  int64_t batch_size_;
  bool shuffle_;
  uint64_t seed_;
  bool drop_last_;
  torch::Tensor order_;  // int64 [N] on the data's device
};

}  // namespace kprior::data
