// DeepConf ("deepconf"): confidence-filtered, confidence-weighted voting over N sampled
// traces, with no verifier (Fu et al. 2025, "Deep Think with Confidence"; Wang et al. 2023,
// self-consistency; the confidence statistics of core/confidence.hpp).
//
// N chains are sampled step by step as in best-of-N. A trace's confidence C comes from the
// generator's own per-token log-probabilities (Step::token_logprobs) along it:
//   confidence "mean":    their mean;
//   confidence "lowest":  the lowest mean of `window` consecutive tokens (DeepConf's lowest
//                         group confidence; a trace shorter than the window: its mean);
//   confidence "tail":    the mean of the last `window` tokens.
// DeepConf's token confidence is the negated mean log-probability of the top-k tokens (a
// larger value: surer); qstar's is the sampled token's log-probability (also larger: surer),
// so the order of traces is the same kind of signal, and a trace's vote weight is exp(C) (the
// geometric-mean token probability over the measured tokens, in (0, 1]).
// Offline mode: of the traces with an answer, the ceil(keep_fraction * m) most confident are
// kept (ties: earlier chain first) and vote with weight exp(C) under CommonParams::voting
// (default weighted; "majority" ignores the weights); the others are dropped from the vote and
// from the candidates. Online mode (online = true, confidence "lowest"): the first `warmup`
// traces run to the end; the threshold s is the (1 - keep_fraction) quantile of their
// confidences (linear interpolation, as numpy.percentile); every later trace stops as soon as
// it has a full window whose mean is below s (its remaining steps are never generated: the
// token saving) and takes no part in the vote; the vote is over the traces with C >= s.
// The verifier is never called, even when one is given (needs_step_verifier = false): the
// generator's confidence is the only signal, the verifier-free option where PRMs transfer
// badly. A generator whose steps carry no token log-probabilities (the programmatic Game of
// 24 proposer, a scripted generator) is an InvalidArgument naming it; the lm: and http:
// generators report them.
// Cost per iteration: one step per unfinished trace; no verifier call.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "qstar/core/confidence.hpp"
#include "qstar/search/detail/chains.hpp"
#include "qstar/search/detail/engine.hpp"

namespace qstar {

/// Which statistic of a trace's token log-probabilities is its confidence.
enum class ConfidenceMeasure {
  Mean,    ///< mean over the whole trace
  Lowest,  ///< lowest window mean (DeepConf's lowest group confidence)
  Tail,    ///< mean of the last `window` tokens
};

inline constexpr const char* to_string(ConfidenceMeasure m) noexcept {
  switch (m) {
    case ConfidenceMeasure::Mean: return "mean";
    case ConfidenceMeasure::Lowest: return "lowest";
    case ConfidenceMeasure::Tail: return "tail";
  }
  return "lowest";
}
inline std::optional<ConfidenceMeasure> confidence_measure_from_string(std::string_view s) noexcept {
  if (s == "mean") return ConfidenceMeasure::Mean;
  if (s == "lowest") return ConfidenceMeasure::Lowest;
  if (s == "tail") return ConfidenceMeasure::Tail;
  return std::nullopt;
}

struct DeepConfParams : CommonParams {
  /// Traces per problem (N).
  int n = 16;
  /// The confidence statistic.
  ConfidenceMeasure confidence = ConfidenceMeasure::Lowest;
  /// Tokens per window ("lowest", "tail", online stopping); DeepConf uses 2048 on long
  /// reasoning traces, a Game of 24 trace has about 50 tokens.
  int window = 16;
  /// Fraction of the answered traces kept for the vote (offline), or the quantile 1 - f of
  /// the warmup confidences that sets the threshold (online); in (0, 1]. DeepConf-high: 0.9,
  /// DeepConf-low: 0.1.
  double keep_fraction = 0.9;
  /// Online mode: warmup traces set a threshold, later traces stop below it.
  bool online = false;
  /// Online mode: traces sampled to the end first to set the threshold (1..n).
  int warmup = 4;

  void validate() const {
    CommonParams::validate();
    if (n < 1) throw InvalidArgument("n must be >= 1");
    if (window < 1) throw InvalidArgument("window must be >= 1");
    if (!(keep_fraction > 0.0 && keep_fraction <= 1.0)) throw InvalidArgument("keep_fraction must be in (0, 1]");
    if (online && (warmup < 1 || warmup > n)) throw InvalidArgument("warmup must be in [1, n] in online mode");
    if (online && confidence != ConfidenceMeasure::Lowest)
      throw InvalidArgument("confidence must be 'lowest' in online mode (it stops traces on window means)");
  }
};

namespace deepconf_detail {

/// The confidence of token log-probabilities `xs` under the params' statistic (NaN: empty).
inline double trace_confidence(std::span<const float> xs, const DeepConfParams& p) {
  const auto w = static_cast<std::size_t>(p.window);
  switch (p.confidence) {
    case ConfidenceMeasure::Mean: return confidence::mean(xs);
    case ConfidenceMeasure::Lowest: return confidence::lowest_window_mean(xs, w);
    case ConfidenceMeasure::Tail: return confidence::tail_mean(xs, w);
  }
  return confidence::kNaN;
}

}  // namespace deepconf_detail

/// Which traces offline DeepConf keeps: given each trace's confidence (NaN: no answer, never
/// kept), the ceil(keep_fraction * m) most confident of the m answered ones, ties to the
/// earlier index. Returns one flag per trace.
inline std::vector<char> deepconf_keep(std::span<const double> conf, double keep_fraction) {
  std::vector<std::size_t> idx;
  for (std::size_t j = 0; j < conf.size(); ++j)
    if (!std::isnan(conf[j])) idx.push_back(j);
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return conf[a] > conf[b]; });
  // A tiny tolerance so that e.g. 0.3 * 10 keeps 3, not 4, despite 0.3 * 10 = 3.0000000000000004.
  const auto k = static_cast<std::size_t>(std::ceil(keep_fraction * static_cast<double>(idx.size()) - 1e-9));
  std::vector<char> keep(conf.size(), 0);
  for (std::size_t r = 0; r < std::min(k, idx.size()); ++r) keep[idx[r]] = 1;
  return keep;
}

/// The q-quantile (q in [0, 1]) of `xs` with linear interpolation between order statistics
/// (numpy.percentile's default); NaN for an empty list.
inline double quantile(std::vector<double> xs, double q) {
  if (xs.empty()) return confidence::kNaN;
  std::sort(xs.begin(), xs.end());
  const double pos = q * static_cast<double>(xs.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, xs.size() - 1);
  return xs[lo] + (pos - static_cast<double>(lo)) * (xs[hi] - xs[lo]);
}

template <Task T, Generator G, class V>
std::vector<SearchResult> deepconf_search(std::span<const Problem> problems, const T& task, G& gen, V& ver,
                                          const DeepConfParams& params, std::uint64_t seed) {
  params.validate();
  detail::Engine<T, G, V> eng(problems, task, gen, ver, params, seed);
  const std::size_t P = problems.size();
  const std::size_t Nc = detail::usable_chains(params.n, params.budget);
  const auto W = static_cast<std::size_t>(params.window);
  std::vector<detail::Chains> chains(P);
  std::vector<std::vector<char>> cut(P);         // online: stopped below the threshold
  std::vector<double> threshold(P, -INFINITY);   // online: s per problem
  auto conf_of = [&](std::size_t i, NodeId leaf) {
    const auto xs = confidence::trajectory_token_logprobs(eng.tree(i), leaf);
    return deepconf_detail::trace_confidence(xs, params);
  };
  auto answered = [&](std::size_t i, NodeId leaf) {
    return detail::usable_leaf(eng.tree(i), leaf, Scoring::None) && eng.tree(i).answer(leaf).has_value();
  };

  for (std::size_t i = 0; i < P; ++i) {
    const std::size_t first = params.online ? std::min(Nc, static_cast<std::size_t>(params.warmup)) : Nc;
    chains[i].open(first);
    cut[i].assign(first, 0);
  }
  while (eng.any_active()) {
    for (std::size_t i = 0; i < P; ++i) {
      detail::Chains& c = chains[i];
      if (!eng.active(i) || !c.all_done()) continue;
      if (!params.online || c.size() >= Nc) {
        eng.stop(i, StopReason::Completed);
        continue;
      }
      // Online: the warmup traces have ended: set the threshold, open the other traces.
      std::vector<double> warm;
      for (NodeId leaf : c.tip)
        if (answered(i, leaf))
          if (const double x = conf_of(i, leaf); !std::isnan(x)) warm.push_back(x);
      threshold[i] = warm.empty() ? -INFINITY : quantile(std::move(warm), 1.0 - params.keep_fraction);
      cut[i].resize(Nc, 0);
      c.open(Nc - c.size());
    }
    if (!eng.any_active()) break;
    eng.begin_iteration();
    const auto stepped = detail::step_chains(eng, chains, Scoring::None);
    for (const auto& [i, j] : stepped) {
      const Tree& t = eng.tree(i);
      const NodeId id = chains[i].tip[j];
      if (t[id].num_tokens > 0 && t.token_logprobs(id).empty())
        throw InvalidArgument(fmt::format(
            "deepconf needs per-token log-probabilities, but generator '{}' returned a step of {} tokens "
            "without token_logprobs (the lm: and http: generators report them)",
            plugin_name(gen, "generator"), t[id].num_tokens));
      if (!params.online || j < static_cast<std::size_t>(params.warmup) || chains[i].done[j]) continue;
      const auto xs = confidence::trajectory_token_logprobs(t, id);
      if (xs.size() >= W && confidence::lowest_window_mean(xs, W) < threshold[i]) {
        chains[i].done[j] = 1;
        cut[i][j] = 1;
      }
    }
  }

  std::vector<SearchResult> results;
  results.reserve(P);
  for (std::size_t i = 0; i < P; ++i) {
    const detail::Chains& c = chains[i];
    std::vector<double> conf(c.size(), confidence::kNaN);
    for (std::size_t j = 0; j < c.size(); ++j)
      if (!cut[i][j] && answered(i, c.tip[j])) conf[j] = conf_of(i, c.tip[j]);
    std::vector<char> keep(c.size(), 0);
    if (params.online) {
      for (std::size_t j = 0; j < c.size(); ++j) keep[j] = !std::isnan(conf[j]) && conf[j] >= threshold[i];
    } else {
      keep = deepconf_keep(conf, params.keep_fraction);
    }
    auto per_chain =
        detail::chain_candidates(eng, i, c, Scoring::None, [&](std::size_t j, NodeId) { return std::exp(conf[j]); });
    for (std::size_t k = 0; k < per_chain.size(); ++k)
      if (!keep[k]) per_chain[k] = Candidate{};
    results.push_back(detail::chain_result(eng, i, std::move(per_chain)));
    results.back().stats.samples = static_cast<std::int64_t>(c.size());
  }
  eng.finish_timing(results);
  return results;
}

template <>
struct AlgorithmTraits<DeepConfParams> {
  static constexpr std::string_view name = "deepconf";
  static constexpr std::string_view budget_field = "n";
  static constexpr bool needs_step_verifier = false;
  static constexpr std::array<FieldFlag, 5> flags{{{"confidence", "confidence"},
                                                   {"window", "window"},
                                                   {"keep-fraction", "keep_fraction"},
                                                   {"online", "online"},
                                                   {"warmup", "warmup"}}};
  template <class P, class F>
  static void own_fields(P& p, F&& f) {
    f("n", p.n);
    f("confidence", p.confidence);
    f("window", p.window);
    f("keep_fraction", p.keep_fraction);
    f("online", p.online);
    f("warmup", p.warmup);
  }
  static void set_budget(DeepConfParams& p, int n) {
    p.n = n;
    p.warmup = std::min(p.warmup, n);
  }
  template <class... A>
  static std::vector<SearchResult> run(A&&... a) {
    return deepconf_search(std::forward<A>(a)...);
  }
};

namespace params_detail {
template <class E>
struct EnumNames;
template <>
struct EnumNames<ConfidenceMeasure> {
  static constexpr const char* choices = "mean, lowest, tail";
  static std::optional<ConfidenceMeasure> parse(std::string_view s) { return confidence_measure_from_string(s); }
};
}  // namespace params_detail

}  // namespace qstar
