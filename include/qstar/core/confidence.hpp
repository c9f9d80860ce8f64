// Confidence statistics over per-token series: Step::token_logprobs, Step::token_entropies
// (stored in the tree: Tree::token_logprobs / token_entropies), or any per-token score. For
// confidence-based filtering and voting in the manner of DeepConf (Fu et al., 2025, "Deep
// Think with Confidence").
//
// DeepConf's token confidence is the negated mean log-probability of the top-k tokens at a
// position. qstar records the sampled token's log-probability and the entropy of the
// model's whole next-token distribution (both at temperature 1), so the confidence series
// here are token_logprobs (higher: surer) and the negated token_entropies. The statistics,
// each NaN for an empty series (and NaN when a value is NaN):
//   mean(xs)                    the average
//   window_means(xs, w)         the mean of every run of w consecutive values, sliding by
//                               one (n - w + 1 of them); a series shorter than w is one
//                               window, its mean (DeepConf's "group confidence")
//   lowest_window_mean(xs, w)   the smallest of those (DeepConf's "lowest group confidence";
//                               DeepConf uses w = 2048 tokens)
//   tail_mean(xs, n)            the mean of the last n values (all of them when fewer)
// Sums are accumulated in double. A window w < 1 is treated as 1.
//
// trajectory_token_logprobs / trajectory_token_entropies concatenate the values of the steps
// from the root to a node (steps without them contribute nothing).
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <span>
#include <vector>

#include "qstar/core/tree.hpp"

namespace qstar::confidence {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// The mean of `xs`; NaN when empty.
inline double mean(std::span<const float> xs) {
  if (xs.empty()) return kNaN;
  double s = 0.0;
  for (float x : xs) s += x;
  return s / static_cast<double>(xs.size());
}

/// The mean of every window of `window` consecutive values (sliding by one); one window (the
/// mean) when xs is shorter; empty when xs is empty.
inline std::vector<double> window_means(std::span<const float> xs, std::size_t window) {
  std::vector<double> out;
  if (xs.empty()) return out;
  const std::size_t w = std::clamp<std::size_t>(window, 1, xs.size());
  // Prefix sums: each window's sum is a difference, so no drift along a long series.
  std::vector<double> pre(xs.size() + 1, 0.0);
  for (std::size_t i = 0; i < xs.size(); ++i) pre[i + 1] = pre[i] + static_cast<double>(xs[i]);
  out.reserve(xs.size() - w + 1);
  for (std::size_t i = 0; i + w <= xs.size(); ++i)
    out.push_back((pre[i + w] - pre[i]) / static_cast<double>(w));
  return out;
}

/// The smallest window mean (DeepConf's lowest group confidence); NaN when xs is empty or a
/// value is NaN.
inline double lowest_window_mean(std::span<const float> xs, std::size_t window) {
  const std::vector<double> m = window_means(xs, window);
  if (m.empty()) return kNaN;
  double lo = m[0];
  for (double v : m) {
    if (v != v) return kNaN;
    lo = std::min(lo, v);
  }
  return lo;
}

/// The mean of the last `n` values (all when fewer); NaN when xs is empty or n == 0.
inline double tail_mean(std::span<const float> xs, std::size_t n) {
  if (n == 0) return kNaN;
  return mean(xs.subspan(xs.size() - std::min(n, xs.size())));
}

/// Every token log-probability of the steps root -> `leaf`, in order.
inline std::vector<float> trajectory_token_logprobs(const Tree& tree, NodeId leaf) {
  std::vector<float> out;
  const TrajectoryView t = tree.trajectory(leaf);
  for (std::size_t i = 0; i < t.size(); ++i) {
    const auto v = t.token_logprobs(i);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

/// Every token entropy of the steps root -> `leaf`, in order.
inline std::vector<float> trajectory_token_entropies(const Tree& tree, NodeId leaf) {
  std::vector<float> out;
  const TrajectoryView t = tree.trajectory(leaf);
  for (std::size_t i = 0; i < t.size(); ++i) {
    const auto v = t.token_entropies(i);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

}  // namespace qstar::confidence
