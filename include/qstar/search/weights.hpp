// Selection rules shared by particle filtering (search/particle_filter.hpp) and REBASE
// (search/rebase.hpp), as free functions so that tests can check them exactly:
//   softmax_weights        w_i = exp(s_i / T) / sum_j exp(s_j / T), computed stably
//   effective_sample_size  ESS = (sum w)^2 / sum w^2 (Kong, Liu & Wong 1994)
//   systematic_resample    one uniform u, M evenly spaced pointers (u + j) / M into the
//                          cumulative weights (Kitagawa 1996; Douc & Cappe 2005)
//   allocate_budget        B children split in proportion to softmax(s / T), rounded by the
//                          largest-remainder (Hamilton) method so that they sum to B exactly
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <span>
#include <vector>

#include "qstar/error.hpp"

namespace qstar {

/// Softmax of scores / temperature (temperature > 0), normalised to sum to 1. The maximum
/// is subtracted first, so any finite scores work. Empty in, empty out.
inline std::vector<double> softmax_weights(std::span<const double> scores, double temperature) {
  if (!(temperature > 0.0) || !std::isfinite(temperature))
    throw InvalidArgument("temperature must be > 0 and finite");
  std::vector<double> w(scores.size());
  if (scores.empty()) return w;
  const double top = *std::max_element(scores.begin(), scores.end());
  double sum = 0.0;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    w[i] = std::exp((scores[i] - top) / temperature);
    sum += w[i];
  }
  for (double& x : w) x /= sum;  // sum >= 1: the maximum contributes exp(0)
  return w;
}

/// Effective sample size (sum w)^2 / sum w^2 of non-negative weights: n for equal weights,
/// 1 when one weight holds everything; 0 for no (or all-zero) weights.
inline double effective_sample_size(std::span<const double> weights) noexcept {
  double s = 0.0, s2 = 0.0;
  for (double w : weights) {
    s += w;
    s2 += w * w;
  }
  return s2 > 0.0 ? s * s / s2 : 0.0;
}

/// Systematic resampling: m draws from the normalised weights with the single uniform u in
/// [0, 1). Draw j picks the first index whose cumulative weight exceeds (u + j) / m (an
/// index whose cumulative weight equals the pointer is passed over). Returns
/// the m ancestor indices in ascending order; index i appears floor or ceil of m * w_i times.
/// Weights need not be normalised (they are divided by their sum); all must be >= 0 with a
/// positive sum.
inline std::vector<std::size_t> systematic_resample(std::span<const double> weights, std::size_t m, double u) {
  if (weights.empty()) throw InvalidArgument("weights must not be empty");
  if (!(u >= 0.0 && u < 1.0)) throw InvalidArgument("u must be in [0, 1)");
  double total = 0.0;
  for (double w : weights) {
    if (!(w >= 0.0) || !std::isfinite(w)) throw InvalidArgument("weights must be finite and >= 0");
    total += w;
  }
  if (!(total > 0.0)) throw InvalidArgument("weights must have a positive sum");
  // Compared on the scale of the draws: pointer u + j against m * (running sum) / total,
  // so that integer weights (equal ones included) meet the pointers exactly.
  std::vector<std::size_t> out;
  out.reserve(m);
  const double scale = static_cast<double>(m) / total;
  std::size_t i = 0;
  double run = weights[0];
  const std::size_t last = weights.size() - 1;
  for (std::size_t j = 0; j < m; ++j) {
    const double pointer = u + static_cast<double>(j);
    // The last index takes whatever rounding left of the sum below m.
    while (i < last && run * scale <= pointer) run += weights[++i];
    out.push_back(i);
  }
  return out;
}

/// REBASE's expansion widths: `budget` children split among the nodes in proportion to
/// softmax(scores / temperature). Each node first gets floor(budget * w_i); the children
/// left over go one each to the largest remainders budget * w_i - floor(.), ties to the
/// lower index. The widths sum to `budget` exactly (0 for no nodes or budget <= 0).
inline std::vector<int> allocate_budget(std::span<const double> scores, int budget, double temperature) {
  std::vector<int> out(scores.size(), 0);
  const std::vector<double> w = softmax_weights(scores, temperature);
  if (scores.empty() || budget <= 0) return out;
  std::vector<double> rem(scores.size());
  long long given = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double quota = static_cast<double>(budget) * w[i];
    const double fl = std::floor(quota);
    out[i] = static_cast<int>(fl);
    rem[i] = quota - fl;
    given += out[i];
  }
  // The remainders sum to budget - given (< nodes), so one pass hands out every child; the
  // loop wraps only if float rounding made that sum equal to the node count.
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return rem[a] > rem[b]; });
  for (std::size_t k = 0; given < budget; k = (k + 1) % order.size()) {
    ++out[order[k]];
    ++given;
  }
  return out;
}

}  // namespace qstar
