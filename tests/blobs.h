#pragma once
// Four Gaussian blobs in 2-D, one per class (centres (±2, ±2)), `per_class` points each with
// standard deviation `spread`, drawn after torch::manual_seed(seed): the small separable
// classification data of the learner, checkpoint and CUDA tests.
#include <torch/types.h>

#include "kprior/data/dataset.h"

namespace kprior::testing {

inline data::Dataset blobs(int64_t per_class, uint64_t seed, double spread,
                           torch::ScalarType dtype = torch::kFloat) {
  torch::manual_seed(seed);
  const auto centers = torch::tensor({{2.0, 2.0}, {-2.0, -2.0}, {2.0, -2.0}, {-2.0, 2.0}}, dtype);
  auto y = torch::arange(4).repeat_interleave(per_class);
  return {centers.index_select(0, y) + spread * torch::randn({4 * per_class, 2}, dtype), y};
}

}  // namespace kprior::testing
