#include "kprior/memory/scores.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "kprior/core/error.h"
#include "kprior/core/random.h"

namespace kprior::memory {

torch::Tensor lambda_trace_scores(const torch::Tensor& probs) {
  return (probs * (1 - probs)).sum(1);
}

torch::Tensor mpe_scores(const torch::Tensor& probs, const torch::Tensor& targets,
                         const torch::Tensor& logit_variance) {
  if (!probs.sizes().equals(logit_variance.sizes()) || targets.size(0) != probs.size(0)) {
    throw UsageError("mpe_scores: probs and variances must both be [N, C] with N targets");
  }
  const auto y = torch::one_hot(targets.to(torch::kLong), probs.size(1)).to(probs.dtype());
  const auto e = probs - y;
  const auto lambda = probs * (1 - probs);
  return (e * lambda * logit_variance).abs().sum(1);
}

torch::Tensor random_scores(int64_t n, uint64_t seed) {
  if (n < 0) throw UsageError("random_scores: n must be >= 0");
  SplitMix64 rng(seed);
  auto out = torch::empty({n}, torch::kFloat64);
  auto* p = out.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<double>(rng.next() >> 11) * 0x1.0p-53;
  return out;
}

std::vector<int64_t> select_top_per_class(const torch::Tensor& scores, const torch::Tensor& labels,
                                          int64_t per_class) {
  if (per_class < 0) throw UsageError("select_top_per_class: per_class must be >= 0");
  if (scores.numel() != labels.numel()) {
    throw UsageError("select_top_per_class: one label per score expected");
  }
  const auto s = scores.to(torch::kFloat64).cpu().contiguous();
  const auto y = labels.to(torch::kLong).cpu().contiguous();
  std::map<int64_t, std::vector<int64_t>> by_class;
  for (int64_t i = 0; i < y.numel(); ++i) by_class[y.data_ptr<int64_t>()[i]].push_back(i);
  std::vector<int64_t> chosen;
  const double* sp = s.data_ptr<double>();
  for (auto& [label, members] : by_class) {
    std::stable_sort(members.begin(), members.end(),
                     [sp](int64_t a, int64_t b) { return sp[a] > sp[b]; });  // stable: index order on ties
    const auto take = std::min<int64_t>(per_class, static_cast<int64_t>(members.size()));
    chosen.insert(chosen.end(), members.begin(), members.begin() + take);
  }
  return chosen;
}

std::vector<int64_t> class_quotas(const std::vector<int64_t>& counts, int64_t total) {
  if (total < 0) throw UsageError("class_quotas: total must be >= 0");
  std::vector<int64_t> quota(counts.size(), 0);
  std::vector<size_t> open;  // classes not yet capped by their count
  for (size_t k = 0; k < counts.size(); ++k) {
    if (counts[k] < 0) throw UsageError("class_quotas: counts must be >= 0");
    if (counts[k] > 0) open.push_back(k);
  }
  int64_t left = total;
  // Water-filling: cap every class whose count is below the current share, then share what
  // is left among the rest; at most |classes| rounds, as each removes a class or ends.
  while (!open.empty() && left > 0) {
    const auto n = static_cast<int64_t>(open.size());
    std::vector<size_t> still_open;
    for (size_t j = 0; j < open.size(); ++j) {
      const auto k = open[j];
      const int64_t share = left / n + (static_cast<int64_t>(j) < left % n ? 1 : 0);
      if (counts[k] <= share) {
        quota[k] = counts[k];
      } else {
        still_open.push_back(k);
      }
    }
    if (still_open.size() == open.size()) {  // nobody capped: hand out the shares
      for (size_t j = 0; j < open.size(); ++j) {
        quota[open[j]] = left / n + (static_cast<int64_t>(j) < left % n ? 1 : 0);
      }
      return quota;
    }
    left = total;
    for (size_t k = 0; k < counts.size(); ++k) {
      if (std::find(still_open.begin(), still_open.end(), k) == still_open.end()) left -= quota[k];
    }
    open = std::move(still_open);
  }
  return quota;
}

}  // namespace kprior::memory
