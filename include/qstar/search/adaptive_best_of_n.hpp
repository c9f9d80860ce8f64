// Adaptive best-of-N ("adaptive-best-of-n", alias "asc"): best-of-N that samples in rounds
// and stops a problem once its answers agree (Aggarwal et al. 2023, "Let's Sample Step by
// Step: Adaptive-Consistency for Efficient Reasoning and Coding with LLMs"; its_hub's
// BetaSelfConsistency; the samples and the final vote are best-of-N's: best_of_n.hpp).
//
// Each problem samples chains in rounds of `round_size` (at most `n` in all). When every
// chain of its current round has ended, the problem looks at the answers of its ended chains
// so far (m of them with an answer, counted by canonical answer, unweighted; v1 and v2 the
// two largest counts, v2 = 0 when there is one answer) and, when m >= min_answers, stops if
//   rule "share": v1 / m >= threshold;
//   rule "beta":  P = 1 - I_{1/2}(v1 + 1, v2 + 1) >= threshold, where I is the regularised
//                 incomplete Beta function: the posterior probability, from a uniform prior,
//                 that the leader's share of the two leading answers exceeds 1/2 (its_hub's
//                 rule). With integer arguments it is a binomial tail, computed exactly here:
//                 P = 1 - sum_{k=0}^{v2} C(v1 + v2 + 1, k) / 2^(v1 + v2 + 1).
//                 E.g. v1 = 4, v2 = 0: P = 1 - 1/32 = 0.96875 (stops at 0.95); v1 = 3,
//                 v2 = 0: 0.9375 (goes on).
// A problem that stops this way reports StopReason::Solved; one that used all n samples,
// Completed. Otherwise it opens the next round. Problems progress independently: a problem
// opens its next round in the same iteration other problems continue theirs, so each
// iteration is ONE generator call (one request per open chain of every running problem) and
// one verifier call, as in best-of-N. The final answer is the configured vote (voting,
// scoring, aggregation as best-of-N) over every chain sampled. Stats::samples counts the
// chains sampled, Stats::generated_tokens the tokens: the saving against best-of-N at the
// same n is measured by `qstar bench --algo best-of-n,adaptive-best-of-n`.
// Cost per iteration: one step per open chain, one score per new step (PRM) or per ended
// chain (ORM); a problem costs between min(n, round_size) and n chains.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qstar/search/best_of_n.hpp"
#include "qstar/search/detail/chains.hpp"
#include "qstar/search/detail/engine.hpp"

namespace qstar {

/// When adaptive best-of-N stops sampling a problem.
enum class AgreementRule {
  Share,  ///< the leading answer's share of the answered samples >= threshold
  Beta,   ///< its_hub's Beta posterior: P(leader's share of the top two > 1/2) >= threshold
};

inline constexpr const char* to_string(AgreementRule r) noexcept { return r == AgreementRule::Share ? "share" : "beta"; }
inline std::optional<AgreementRule> agreement_rule_from_string(std::string_view s) noexcept {
  if (s == "share") return AgreementRule::Share;
  if (s == "beta") return AgreementRule::Beta;
  return std::nullopt;
}

/// The Beta-rule stopping probability 1 - I_{1/2}(v1 + 1, v2 + 1) for vote counts v1 >= 0,
/// v2 >= 0 (exact binomial tail; computed in log space, so any count is fine).
inline double beta_stop_probability(std::int64_t v1, std::int64_t v2) {
  const auto n = static_cast<double>(v1 + v2 + 1);
  // log of C(n, k) / 2^n for k = 0..v2, summed with the largest term factored out.
  std::vector<double> logs;
  logs.reserve(static_cast<std::size_t>(v2) + 1);
  for (std::int64_t k = 0; k <= v2; ++k) {
    const auto kd = static_cast<double>(k);
    logs.push_back(std::lgamma(n + 1.0) - std::lgamma(kd + 1.0) - std::lgamma(n - kd + 1.0) - n * std::log(2.0));
  }
  const double top = *std::max_element(logs.begin(), logs.end());
  double s = 0.0;
  for (double l : logs) s += std::exp(l - top);
  return 1.0 - std::exp(top) * s;
}

struct AdaptiveBestOfNParams : CommonParams {
  /// Samples per problem at most (N).
  int n = 16;
  /// Samples per round: the stopping rule is checked after each round.
  int round_size = 4;
  /// The stopping rule.
  AgreementRule rule = AgreementRule::Beta;
  /// Share: the leading answer's share to stop at, in (0, 1]. Beta: the posterior probability
  /// to stop at, in (0.5, 1] (its_hub's default 0.95).
  double threshold = 0.95;
  /// Answered samples needed before the rule may stop a problem (>= 1; its_hub: 2).
  int min_answers = 2;
  /// Which verifier scores rank the samples (as best-of-N).
  Scoring scoring = Scoring::Auto;

  void validate() const {
    CommonParams::validate();
    if (n < 1) throw InvalidArgument("n must be >= 1");
    if (round_size < 1) throw InvalidArgument("round_size must be >= 1");
    if (min_answers < 1) throw InvalidArgument("min_answers must be >= 1");
    if (rule == AgreementRule::Share && !(threshold > 0.0 && threshold <= 1.0))
      throw InvalidArgument("threshold must be in (0, 1] with rule 'share'");
    if (rule == AgreementRule::Beta && !(threshold > 0.5 && threshold <= 1.0))
      throw InvalidArgument("threshold must be in (0.5, 1] with rule 'beta'");
  }
};

/// Whether the answers' vote counts (any order) meet the rule: the decision adaptive
/// best-of-N takes after a round.
inline bool answers_agree(std::vector<std::int64_t> counts, const AdaptiveBestOfNParams& p) {
  std::int64_t m = 0;
  for (auto c : counts) m += c;
  if (m < p.min_answers || counts.empty()) return false;
  std::sort(counts.begin(), counts.end(), std::greater<>());
  const std::int64_t v1 = counts[0], v2 = counts.size() > 1 ? counts[1] : 0;
  if (p.rule == AgreementRule::Share) return static_cast<double>(v1) >= p.threshold * static_cast<double>(m);
  return beta_stop_probability(v1, v2) >= p.threshold;
}

template <Task T, Generator G, class V>
std::vector<SearchResult> adaptive_best_of_n(std::span<const Problem> problems, const T& task, G& gen, V& ver,
                                             const AdaptiveBestOfNParams& params, std::uint64_t seed) {
  params.validate();
  const Scoring scoring = detail::resolve_scoring<V>(params.scoring);
  if constexpr (!StepVerifier<V>) {
    if (scoring == Scoring::Prm) throw InvalidArgument("scoring: 'prm' needs a StepVerifier");
  }
  if constexpr (!OutcomeVerifier<V>) {
    if (scoring == Scoring::Orm) throw InvalidArgument("scoring: 'orm' needs an OutcomeVerifier");
  }
  detail::Engine<T, G, V> eng(problems, task, gen, ver, params, seed);
  const std::size_t P = problems.size();
  const std::size_t Nc = detail::usable_chains(params.n, params.budget);
  const auto R = static_cast<std::size_t>(params.round_size);
  std::vector<detail::Chains> chains(P);

  // Between rounds: stop a problem whose answers agree or whose n samples are all taken,
  // else open its next round.
  auto next_round = [&](std::size_t i) {
    detail::Chains& c = chains[i];
    if (!eng.active(i) || !c.all_done()) return;
    if (c.size() > 0) {
      std::map<std::string, std::int64_t> votes;
      const Tree& t = eng.tree(i);
      for (NodeId leaf : c.tip)
        if (detail::usable_leaf(t, leaf, scoring))
          if (auto a = t.answer(leaf)) ++votes[std::string(task.canonicalize(*a))];
      std::vector<std::int64_t> counts;
      for (const auto& [a, v] : votes) counts.push_back(v);
      if (answers_agree(std::move(counts), params)) return eng.stop(i, StopReason::Solved);
    }
    if (c.size() >= Nc) return eng.stop(i, StopReason::Completed);
    c.open(std::min(R, Nc - c.size()));
  };

  while (eng.any_active()) {
    for (std::size_t i = 0; i < P; ++i) next_round(i);
    if (!eng.any_active()) break;
    eng.begin_iteration();
    detail::step_chains(eng, chains, scoring);
  }

  std::vector<SearchResult> results;
  results.reserve(P);
  for (std::size_t i = 0; i < P; ++i) {
    auto per_chain = detail::chain_candidates(eng, i, chains[i], scoring, [&](std::size_t, NodeId leaf) {
      if (scoring == Scoring::Prm) return eng.path_score(i, leaf);
      if (scoring == Scoring::Orm) return eng.tree(i)[leaf].value;
      return 1.0;
    });
    results.push_back(detail::chain_result(eng, i, std::move(per_chain)));
    results.back().stats.samples = static_cast<std::int64_t>(chains[i].size());
  }
  eng.finish_timing(results);
  return results;
}

template <>
struct AlgorithmTraits<AdaptiveBestOfNParams> {
  static constexpr std::string_view name = "adaptive-best-of-n";
  static constexpr std::string_view budget_field = "n";
  static constexpr bool needs_step_verifier = false;
  static constexpr std::array<FieldFlag, 5> flags{{{"scoring", "scoring"},
                                                   {"round-size", "round_size"},
                                                   {"stop-rule", "rule"},
                                                   {"agreement", "threshold"},
                                                   {"min-answers", "min_answers"}}};
  template <class P, class F>
  static void own_fields(P& p, F&& f) {
    f("n", p.n);
    f("round_size", p.round_size);
    f("rule", p.rule);
    f("threshold", p.threshold);
    f("min_answers", p.min_answers);
    f("scoring", p.scoring);
  }
  static void set_budget(AdaptiveBestOfNParams& p, int n) { p.n = n; }
  template <class... A>
  static std::vector<SearchResult> run(A&&... a) {
    return adaptive_best_of_n(std::forward<A>(a)...);
  }
};

namespace params_detail {
template <class E>
struct EnumNames;
template <>
struct EnumNames<AgreementRule> {
  static constexpr const char* choices = "share, beta";
  static std::optional<AgreementRule> parse(std::string_view s) { return agreement_rule_from_string(s); }
};
}  // namespace params_detail

}  // namespace qstar
