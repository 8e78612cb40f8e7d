#include "kprior/data/batch_loader.h"

#include <torch/torch.h>

#include "kprior/core/error.h"
#include "kprior/core/random.h"

namespace kprior::data {

BatchLoader::BatchLoader(Dataset data, int64_t batch_size, bool shuffle, uint64_t seed,
                         bool drop_last)
    : data_(std::move(data)), batch_size_(batch_size), shuffle_(shuffle), seed_(seed),
      drop_last_(drop_last) {
  if (batch_size <= 0) {
    throw UsageError("batch size must be > 0, got " + std::to_string(batch_size));
  }
  set_epoch(0);
}

int64_t BatchLoader::num_batches() const {
  const int64_t n = data_.size();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

void BatchLoader::set_epoch(int64_t epoch) {
  const int64_t n = data_.size();
  if (shuffle_) {
    // Portable shuffle (core/random.h): the same order on every LibTorch version.
    const auto perm = random_permutation(n, mix_seed(seed_, static_cast<uint64_t>(epoch)));
    order_ = torch::tensor(perm, torch::kLong);
  } else {
    order_ = torch::arange(n, torch::kLong);
  }
  if (data_.targets.defined()) order_ = order_.to(data_.targets.device());
}

Batch BatchLoader::batch(int64_t b) const {
  if (b < 0 || b >= num_batches()) {
    throw UsageError("batch index " + std::to_string(b) + " outside 0.." +
                     std::to_string(num_batches() - 1));
  }
  const int64_t start = b * batch_size_;
  const int64_t stop = std::min(start + batch_size_, data_.size());
  auto idx = order_.slice(0, start, stop);
  return {data_.inputs.index_select(0, idx), data_.targets.index_select(0, idx), idx};
}

}  // namespace kprior::data
