#pragma once
// Correlation coefficients for comparing estimates with ground truth (e.g. MPE's estimated
// class-removal NLL against the NLL after retraining).
#include <vector>

namespace kprior::metrics {

/// Pearson's r. Throws kprior::UsageError for fewer than 2 pairs or unequal lengths; returns
/// NaN when either side is constant (r is undefined then).
double pearson(const std::vector<double>& a, const std::vector<double>& b);

/// Spearman's ρ: Pearson's r of the ranks, tied values sharing their mean rank.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

/// Ranks 1..n with ties given their mean rank.
std::vector<double> ranks(const std::vector<double>& v);

}  // namespace kprior::metrics
