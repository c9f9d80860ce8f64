// Trajectory score from per-step scores (algorithms.md, "Score aggregation"):
// min (Math-Shepherd), prod (Let's Verify), last (search-and-learn default), mean, custom.
// Every per-step score stays in the tree, so an aggregation can be re-run offline.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "qstar/core/tree.hpp"
#include "qstar/error.hpp"

namespace qstar {

enum class Aggregation { Min, Prod, Last, Mean, Custom };

inline constexpr const char* to_string(Aggregation a) noexcept {
  switch (a) {
    case Aggregation::Min: return "min";
    case Aggregation::Prod: return "prod";
    case Aggregation::Last: return "last";
    case Aggregation::Mean: return "mean";
    case Aggregation::Custom: return "custom";
  }
  return "last";
}

inline std::optional<Aggregation> aggregation_from_string(std::string_view s) noexcept {
  if (s == "min") return Aggregation::Min;
  if (s == "prod") return Aggregation::Prod;
  if (s == "last") return Aggregation::Last;
  if (s == "mean") return Aggregation::Mean;
  if (s == "custom") return Aggregation::Custom;
  return std::nullopt;
}

/// A custom aggregation: step scores (root first) -> trajectory score.
using CustomAggregation = std::function<double(std::span<const double>)>;

/// Aggregates step scores. An empty list scores 0 for every rule but prod, whose empty
/// product is 1 (no step can be wrong yet); custom rules see the empty span.
inline double aggregate(std::span<const double> scores, Aggregation rule,
                        const CustomAggregation& custom = {}) {
  switch (rule) {
    case Aggregation::Min:
      return scores.empty() ? 0.0 : *std::min_element(scores.begin(), scores.end());
    case Aggregation::Prod: {
      double p = 1.0;
      for (double s : scores) p *= s;
      return p;
    }
    case Aggregation::Last:
      return scores.empty() ? 0.0 : scores.back();
    case Aggregation::Mean: {
      if (scores.empty()) return 0.0;
      double s = 0.0;
      for (double x : scores) s += x;
      return s / static_cast<double>(scores.size());
    }
    case Aggregation::Custom:
      if (!custom) throw InvalidArgument("aggregation: 'custom' needs a custom callable");
      return custom(scores);
  }
  return 0.0;
}

/// Incremental form used by the searches: the aggregate of a path, given the aggregate
/// state of its parent path. Custom rules fall back to a full recomputation.
struct AggregateState {
  double min = 1.0, prod = 1.0, sum = 0.0, last = 0.0;
  int count = 0;
  void push(double s) noexcept {
    min = count == 0 ? s : std::min(min, s);
    prod *= s;
    sum += s;
    last = s;
    ++count;
  }
  double value(Aggregation rule) const noexcept {
    switch (rule) {
      case Aggregation::Min: return count ? min : 0.0;
      case Aggregation::Prod: return prod;
      case Aggregation::Last: return count ? last : 0.0;
      case Aggregation::Mean: return count ? sum / count : 0.0;
      case Aggregation::Custom: return 0.0;
    }
    return 0.0;
  }
};

/// Aggregated score of the trajectory root -> leaf from the per-step scores in the tree
/// (unscored steps are skipped).
inline double aggregate_path(const Tree& tree, NodeId leaf, Aggregation rule,
                             const CustomAggregation& custom = {}) {
  double buf[64];
  std::vector<double> big;
  const auto depth = static_cast<std::size_t>(tree[leaf].depth);
  double* out = buf;
  if (depth > 64) {
    big.resize(depth);
    out = big.data();
  }
  std::size_t n = 0;
  for (NodeId cur = leaf; cur != Tree::root(); cur = tree[cur].parent)
    if (tree[cur].scored()) out[n++] = tree[cur].score;
  std::reverse(out, out + n);
  return aggregate(std::span<const double>(out, n), rule, custom);
}

}  // namespace qstar
