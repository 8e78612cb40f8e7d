// End to end: sequential training on a small synthetic split task sequence learns every task
// with each optimizer (accuracy far above chance right after training it).
#include <torch/torch.h>

#include "catch.h"
#include "kprior/core/error.h"
#include "kprior/data/task_sequence.h"
#include "kprior/train/finetune.h"

using namespace kprior;

namespace {

// Four Gaussian blobs in 2-D, one per class, 100 training and 50 test points each.
data::Dataset blobs(int64_t per_class, uint64_t seed) {
  torch::manual_seed(seed);
  const auto centers = torch::tensor({{2.0f, 2.0f}, {-2.0f, -2.0f}, {2.0f, -2.0f}, {-2.0f, 2.0f}});
  auto y = torch::arange(4).repeat_interleave(per_class);
  auto x = centers.index_select(0, y) + 0.5 * torch::randn({4 * per_class, 2});
  return {x, y};
}

}  // namespace

TEST_CASE("fine-tuning learns each task of a split sequence", "[train]") {
  const auto seq = data::make_split_sequence("blobs", blobs(100, 1), blobs(50, 2), {{0, 1}, {2, 3}}, 4);
  for (auto kind : {train::OptimizerKind::IVON, train::OptimizerKind::Adam, train::OptimizerKind::SGD}) {
    CAPTURE(static_cast<int>(kind));
    torch::manual_seed(0);
    nn::MLP model(std::vector<int64_t>{2, 16, 4});
    int epochs_seen = 0;
    train::Callbacks cb;
    cb.on_epoch_end = [&](const train::Progress&) { ++epochs_seen; };
    const auto r = train::train_finetune(model, seq, train::FinetuneOptions().optimizer(kind).epochs(20).batch_size(32), cb);
    CHECK(epochs_seen == 40);
    CHECK(r.train_seconds.size() == 2);
    CHECK(r.task_incremental.at(0, 0) > 0.95);
    CHECK(r.task_incremental.at(1, 1) > 0.95);
    // Class-incremental accuracy can only be lower or equal (more classes to confuse).
    CHECK(r.class_incremental.at(1, 1) <= r.task_incremental.at(1, 1));
  }
  CHECK_THROWS_AS(train::parse_optimizer("adamw"), UsageError);
  CHECK_THROWS_AS(train::FinetuneOptions().epochs(0).validate(), UsageError);
}
