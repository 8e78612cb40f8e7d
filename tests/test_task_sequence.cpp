// Split and permuted task sequences, label views, and the batch loader.
#include <torch/torch.h>

#include <set>

#include "catch.h"
#include "kprior/core/error.h"
#include "kprior/data/batch_loader.h"
#include "kprior/data/task_sequence.h"

using namespace kprior::data;

namespace {

// 10 classes, 3 train and 2 test examples each, 2x2 "images" whose pixels encode the index.
std::pair<Dataset, Dataset> toy_data() {
  auto make = [](int64_t per_class) {
    const int64_t n = 10 * per_class;
    auto x = torch::arange(n * 4, torch::kFloat32).reshape({n, 1, 2, 2});
    auto y = torch::arange(n, torch::kLong) % 10;
    return Dataset{x, y};
  };
  return {make(3), make(2)};
}

}  // namespace

TEST_CASE("split sequence: classes, sizes, masks and label views", "[data]") {
  auto [train, test] = toy_data();
  const auto seq = make_split_sequence("split", train, test, consecutive_groups(10, 2), 10);
  REQUIRE(seq.size() == 5);
  CHECK(seq.multi_head);
  for (int64_t t = 0; t < 5; ++t) {
    const Task& task = seq.tasks[t];
    CHECK(task.classes == std::vector<int64_t>{2 * t, 2 * t + 1});
    CHECK(task.train.size() == 6);
    CHECK(task.test.size() == 4);
    // Every example belongs to the task's classes, and the inputs travel with their labels.
    for (int64_t i = 0; i < task.train.size(); ++i) {
      const int64_t y = task.train.targets[i].item<int64_t>();
      CHECK((y == 2 * t || y == 2 * t + 1));
      const int64_t original = task.train.inputs[i][0][0][0].item<int64_t>() / 4;
      CHECK(original % 10 == y);
    }
    const auto mask = output_mask(task, 10);
    CHECK(mask.sum().item<int64_t>() == 2);
    CHECK(mask[2 * t].item<bool>());
    CHECK(mask[2 * t + 1].item<bool>());
    const auto local = head_targets(task, task.train.targets);
    CHECK(torch::equal(local, task.train.targets - 2 * t));
  }
  CHECK(seq.classes_seen(2) == std::vector<int64_t>{0, 1, 2, 3, 4, 5});

  const auto logits = torch::arange(20, torch::kFloat32).reshape({2, 10});
  const auto head = head_logits(seq.tasks[3], logits);
  CHECK(torch::equal(head, torch::tensor({{6.f, 7.f}, {16.f, 17.f}})));
  CHECK_THROWS_AS(head_targets(seq.tasks[0], torch::tensor({3}, torch::kLong)), kprior::UsageError);
  Task empty_head;
  empty_head.name = "none";
  CHECK_THROWS_WITH(head_targets(empty_head, torch::tensor({0}, torch::kLong)), Catch::Matchers::Contains("has no classes"));
}

TEST_CASE("split sequence rejects bad groups", "[data]") {
  auto [train, test] = toy_data();
  CHECK_THROWS_WITH(make_split_sequence("s", train, test, {{0, 1}, {1, 2}}, 10),
                    Catch::Matchers::Contains("class 1 appears in two groups"));
  CHECK_THROWS_WITH(make_split_sequence("s", train, test, {{0, 12}}, 10),
                    Catch::Matchers::Contains("outside [0, 10)"));
  CHECK_THROWS_AS(make_split_sequence("s", train, test, {{}}, 10), kprior::UsageError);
  const Dataset no_test{test.inputs.slice(0, 0, 0), test.targets.slice(0, 0, 0)};
  CHECK_THROWS_WITH(make_split_sequence("s", train, no_test, {{0, 1}}, 10),
                    Catch::Matchers::Contains("no test examples of classes 0/1"));
  CHECK_THROWS_AS(consecutive_groups(10, 3), kprior::UsageError);
}

TEST_CASE("permuted sequence: task 0 unchanged, seeded bijective permutations", "[data]") {
  auto [train, test] = toy_data();
  const auto a = make_permuted_sequence("perm", train, test, 4, 7);
  const auto b = make_permuted_sequence("perm", train, test, 4, 7);
  const auto c = make_permuted_sequence("perm", train, test, 4, 8);
  REQUIRE(a.size() == 4);
  CHECK_FALSE(a.multi_head);
  CHECK(torch::equal(a.tasks[0].train.inputs, train.inputs));
  for (int64_t t = 1; t < 4; ++t) {
    const auto& x = a.tasks[t].train.inputs;
    CHECK(torch::equal(x, b.tasks[t].train.inputs));
    CHECK_FALSE(torch::equal(x, c.tasks[t].train.inputs));
    CHECK_FALSE(torch::equal(x, train.inputs));
    // A permutation of each row's pixels: same multiset, and the same permutation for
    // train and test (row 0 of both holds pixels 0..3 originally).
    const auto sorted = std::get<0>(x.reshape({x.size(0), -1}).sort(1));
    CHECK(torch::equal(sorted, train.inputs.reshape({x.size(0), -1})));
    CHECK(torch::equal(a.tasks[t].train.inputs[0], a.tasks[t].test.inputs[0]));
    CHECK(torch::equal(a.tasks[t].train.targets, train.targets));
    CHECK(a.tasks[t].classes.size() == 10);
  }
  CHECK_FALSE(torch::equal(a.tasks[1].train.inputs, a.tasks[2].train.inputs));
}

TEST_CASE("batch loader: each example once per epoch, seeded order, no dataset copy", "[data]") {
  auto [train, test] = toy_data();
  BatchLoader loader(train, 8, true, 3);
  CHECK(loader.num_batches() == 4);  // 30 examples: 8+8+8+6
  auto epoch_order = [&](int64_t e) {
    loader.set_epoch(e);
    std::vector<int64_t> order;
    for (const Batch& b : loader) {
      CHECK(torch::equal(b.targets, train.targets.index_select(0, b.indices)));
      CHECK(torch::equal(b.inputs, train.inputs.index_select(0, b.indices)));
      for (int64_t i = 0; i < b.indices.size(0); ++i) order.push_back(b.indices[i].item<int64_t>());
    }
    return order;
  };
  const auto e0 = epoch_order(0);
  const auto e1 = epoch_order(1);
  CHECK(std::set<int64_t>(e0.begin(), e0.end()).size() == 30);
  CHECK(e0.size() == 30);
  CHECK(e0 != e1);
  CHECK(epoch_order(0) == e0);
  BatchLoader other(train, 8, true, 4);
  other.set_epoch(0);
  CHECK_FALSE(torch::equal(other.batch(0).indices, loader.batch(0).indices));
  // The loader shares the dataset's storage instead of copying it.
  CHECK(loader.dataset().inputs.data_ptr() == train.inputs.data_ptr());

  BatchLoader in_order(train, 8, false, 0, /*drop_last=*/true);
  CHECK(in_order.num_batches() == 3);
  CHECK(torch::equal(in_order.batch(1).indices, torch::arange(8, 16, torch::kLong)));
  CHECK_THROWS_AS(in_order.batch(3), kprior::UsageError);
  CHECK_THROWS_AS(BatchLoader(train, 0), kprior::UsageError);
}
