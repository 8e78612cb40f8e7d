#pragma once
// The accuracy matrix of a continual-learning run and the summaries the field reports
// (METHODS.md §6; Lopez-Paz & Ranzato, "Gradient Episodic Memory", NeurIPS 2017, for BWT;
// Chaudhry et al., ECCV 2018, for forgetting).
#include <cstdint>
#include <vector>

namespace kprior::metrics {

class AccuracyMatrix {
 public:
  /// An empty T×T matrix.
  explicit AccuracyMatrix(int64_t num_tasks);
  int64_t num_tasks() const { return static_cast<int64_t>(r_.size()); }

  /// R[i][j] = accuracy on task j after training task i (j <= i). Throws on bad indices.
  void set(int64_t after_task, int64_t on_task, double accuracy);
  double at(int64_t after_task, int64_t on_task) const;
  /// Whether R[i][j] was set.
  bool has(int64_t after_task, int64_t on_task) const;

  /// mean_j R[i][j] over j <= i: the average accuracy after task i.
  double average_after(int64_t after_task) const;
  /// Average accuracy after the last task trained so far (`last`).
  double average(int64_t last) const { return average_after(last); }
  /// BWT = mean_{j<T} (R[T][j] − R[j][j]) with T = `last`; 0 when last = 0.
  double backward_transfer(int64_t last) const;
  /// Forgetting = mean_{j<T} (max_{i<T} R[i][j] − R[T][j]); 0 when last = 0.
  double forgetting(int64_t last) const;
  /// The rows as nested vectors (NaN where unset).
  const std::vector<std::vector<double>>& rows() const { return r_; }

 private:
  void check(int64_t i, int64_t j) const;
  std::vector<std::vector<double>> r_;
};

}  // namespace kprior::metrics
