#include "kprior/metrics/accuracy_matrix.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kprior/core/error.h"

namespace kprior::metrics {

AccuracyMatrix::AccuracyMatrix(int64_t num_tasks) {
  if (num_tasks <= 0) throw UsageError("AccuracyMatrix: number of tasks must be > 0");
  r_.assign(static_cast<size_t>(num_tasks),
            std::vector<double>(static_cast<size_t>(num_tasks),
                                std::numeric_limits<double>::quiet_NaN()));
}

void AccuracyMatrix::check(int64_t i, int64_t j) const {
  if (i < 0 || i >= num_tasks() || j < 0 || j > i) {
    throw UsageError("AccuracyMatrix: entry (" + std::to_string(i) + ", " + std::to_string(j) +
                     ") is outside 0 <= on_task <= after_task < " + std::to_string(num_tasks()));
  }
}

void AccuracyMatrix::set(int64_t after_task, int64_t on_task, double accuracy) {
  check(after_task, on_task);
  r_[after_task][on_task] = accuracy;
}

bool AccuracyMatrix::has(int64_t after_task, int64_t on_task) const {
  check(after_task, on_task);
  return !std::isnan(r_[after_task][on_task]);
}

double AccuracyMatrix::at(int64_t after_task, int64_t on_task) const {
  if (!has(after_task, on_task)) {
    throw Error("AccuracyMatrix: entry (" + std::to_string(after_task) + ", " +
                std::to_string(on_task) + ") was never measured");
  }
  return r_[after_task][on_task];
}

double AccuracyMatrix::average_after(int64_t after_task) const {
  double sum = 0;
  for (int64_t j = 0; j <= after_task; ++j) sum += at(after_task, j);
  return sum / static_cast<double>(after_task + 1);
}

double AccuracyMatrix::backward_transfer(int64_t last) const {
  if (last == 0) return 0.0;
  double sum = 0;
  for (int64_t j = 0; j < last; ++j) sum += at(last, j) - at(j, j);
  return sum / static_cast<double>(last);
}

double AccuracyMatrix::forgetting(int64_t last) const {
  if (last == 0) return 0.0;
  double sum = 0;
  for (int64_t j = 0; j < last; ++j) {
    double best = -std::numeric_limits<double>::infinity();
    for (int64_t i = j; i < last; ++i) best = std::max(best, at(i, j));
    sum += best - at(last, j);
  }
  return sum / static_cast<double>(last);
}

}  // namespace kprior::metrics
