// Continual-learning metrics on hand-made accuracy matrices (values worked out by hand).
#include <cmath>

#include "catch.h"
#include "kprior/core/error.h"
#include "kprior/metrics/accuracy_matrix.h"

using kprior::metrics::AccuracyMatrix;

TEST_CASE("accuracy matrix summaries match hand computation", "[metrics]") {
  // R = [[0.6], [0.8, 0.9], [0.5, 0.7, 0.95]] (task 0 improved while training task 1).
  AccuracyMatrix r(3);
  r.set(0, 0, 0.6);
  r.set(1, 0, 0.8);
  r.set(1, 1, 0.9);
  r.set(2, 0, 0.5);
  r.set(2, 1, 0.7);
  r.set(2, 2, 0.95);
  CHECK(r.average_after(0) == Approx(0.6));
  CHECK(r.average_after(1) == Approx(0.85));
  CHECK(r.average(2) == Approx((0.5 + 0.7 + 0.95) / 3));
  // BWT = ((0.5 − 0.6) + (0.7 − 0.9)) / 2
  CHECK(r.backward_transfer(2) == Approx(-0.15));
  // Forgetting = ((max(0.6, 0.8) − 0.5) + (0.9 − 0.7)) / 2: the max is not always R[j][j].
  CHECK(r.forgetting(2) == Approx(0.25));
  CHECK(r.backward_transfer(0) == 0.0);
  CHECK(r.forgetting(0) == 0.0);
  CHECK(std::isnan(r.rows()[0][2]));
}

TEST_CASE("accuracy matrix rejects entries above the diagonal and unmeasured reads", "[metrics]") {
  AccuracyMatrix r(2);
  CHECK_THROWS_AS(r.set(0, 1, 0.5), kprior::UsageError);
  CHECK_THROWS_AS(r.set(2, 0, 0.5), kprior::UsageError);
  CHECK_THROWS_WITH(r.at(1, 0), Catch::Matchers::Contains("never measured"));
  CHECK_THROWS_AS(AccuracyMatrix(0), kprior::UsageError);
}
