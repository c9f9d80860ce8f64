// Best-of-N with voting (Cobbe et al. 2021, "Training Verifiers to Solve Math Word
// Problems"; Wang et al. 2023, self-consistency; Lightman et al. 2023, "Let's Verify Step
// by Step"; search-and-learn's protocol for the n = 1, 2, 4, ..., N curve).
//
// N independent chains per problem are sampled step by step until each ends. Each
// iteration makes ONE generator call (one request per unfinished chain, all problems
// together) and ONE verifier call: the PRM scores each chain's new step, or the ORM scores
// the chains that ended in that iteration. The answer is chosen by naive / majority /
// weighted / top-k-majority voting over aggregated PRM or ORM scores; with NoVerifier every
// sample weighs 1 (plain majority). The curve votes over the first n chains of the same run.
// Cost per iteration: one step per unfinished chain, one score per new step.
#pragma once

#include <algorithm>
#include <array>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "qstar/search/detail/engine.hpp"

namespace qstar {

/// Which verifier output ranks best-of-N samples.
enum class Scoring {
  Auto,  ///< PRM if the verifier is a StepVerifier, else ORM, else none
  Prm,   ///< aggregated per-step scores (CommonParams::aggregation)
  Orm,   ///< one outcome score per complete trajectory
  None,  ///< no verifier: every sample weighs 1
};

struct BestOfNParams : CommonParams {
  /// Samples per problem (N).
  int n = 16;
  /// Which scores rank the samples.
  Scoring scoring = Scoring::Auto;
  /// Compute SearchResult::curve (answers from the first 1, 2, 4, ..., N samples).
  bool curve = true;

  void validate() const {
    CommonParams::validate();
    if (n < 1) throw InvalidArgument("n must be >= 1");
  }
};

namespace detail {
template <class V>
Scoring resolve_scoring(Scoring s) {
  if (s != Scoring::Auto) return s;
  if constexpr (StepVerifier<V>) return Scoring::Prm;
  else if constexpr (OutcomeVerifier<V>) return Scoring::Orm;
  else return Scoring::None;
}
}  // namespace detail

template <Task T, Generator G, class V>
std::vector<SearchResult> best_of_n(std::span<const Problem> problems, const T& task, G& gen,
                                    V& ver, const BestOfNParams& params, std::uint64_t seed) {
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
  const auto N = static_cast<std::size_t>(params.n);
  // Chains that can ever get a node: the engine grants node requests in order and stops a
  // problem at the first it cannot grant, so under a node cap only the first max_nodes - 1
  // chains (the root takes one node) are ever extended. The others stay empty: keeping state
  // for them would cost O(N) memory and time whatever the cap (N = 10^7 took ~2 GB).
  const std::size_t Nc =
      params.budget.max_nodes > 0 ? std::min(N, static_cast<std::size_t>(params.budget.max_nodes - 1)) : N;
  std::vector<std::vector<NodeId>> tip(P, std::vector<NodeId>(Nc, Tree::root()));
  std::vector<std::vector<char>> done(P, std::vector<char>(Nc, 0));
  std::vector<detail::Expansion> wanted;
  std::vector<std::pair<std::size_t, std::size_t>> who;  // (problem, chain) per expansion
  std::vector<detail::Ref> fresh, ended;
  std::vector<std::pair<std::size_t, std::size_t>> ended_who;

  while (eng.any_active()) {
    eng.begin_iteration();
    wanted.clear();
    who.clear();
    for (std::size_t i = 0; i < P; ++i) {
      if (!eng.active(i)) continue;
      for (std::size_t j = 0; j < Nc; ++j)
        if (!done[i][j]) {
          wanted.push_back({i, tip[i][j], 1, false, false});
          who.emplace_back(i, j);
        }
      if (wanted.empty() || who.back().first != i) eng.stop(i, StopReason::Completed);
    }
    if (wanted.empty()) break;
    const auto got = eng.expand(wanted);
    fresh.clear();
    ended.clear();
    ended_who.clear();
    for (std::size_t w = 0; w < wanted.size(); ++w) {
      const auto [i, j] = who[w];
      if (got[w].empty()) {
        if (eng.active(i)) done[i][j] = 1;  // no proposal: the chain ends without an answer
        continue;
      }
      const NodeId id = got[w][0];
      tip[i][j] = id;
      fresh.push_back({i, id});
      if (eng.tree(i)[id].terminal) {
        done[i][j] = 1;
        ended.push_back({i, id});
        ended_who.emplace_back(i, j);
      }
    }
    if (scoring == Scoring::Prm) {
      if constexpr (StepVerifier<V>) eng.verify_steps(fresh);
    } else if (scoring == Scoring::Orm) {
      if constexpr (OutcomeVerifier<V>) {
        const auto s = eng.verify_outcomes(ended);
        for (std::size_t e = 0; e < ended.size(); ++e) eng.tree(ended[e].problem)[ended[e].node].value = s[e];
      }
    }
  }

  std::vector<SearchResult> results;
  results.reserve(P);
  for (std::size_t i = 0; i < P; ++i) {
    const Tree& t = eng.tree(i);
    // One entry per chain, in chain order (the tie-break index of the vote). Chains Nc..N-1
    // never got a node: they hold no candidate and take no part in any vote, so they are
    // left out here and in the curve (a point with n > Nc votes over the same Nc chains).
    std::vector<Candidate> chains;
    chains.reserve(Nc);
    for (std::size_t j = 0; j < Nc; ++j) {
      const NodeId leaf = tip[i][j];
      const Node& n = t[leaf];
      const bool usable = leaf != Tree::root() && n.terminal && !n.pruned &&
                          (scoring != Scoring::Prm || n.scored()) &&
                          (scoring != Scoring::Orm || !std::isnan(n.value));
      double score = 1.0;
      if (scoring == Scoring::Prm && usable) score = eng.path_score(i, leaf);
      if (scoring == Scoring::Orm && usable) score = n.value;
      Candidate c = usable ? eng.make_candidate(i, leaf, score) : Candidate{};
      if (!usable) c.node = kNoNode;
      chains.push_back(std::move(c));
    }
    const auto top_k = static_cast<std::size_t>(params.top_k);
    std::vector<CurvePoint> curve;
    if (params.curve) {
      auto check = [&](const std::optional<std::string>& a) -> std::optional<bool> {
        if constexpr (CheckedTask<T>) {
          if (!a) return false;
          return task.check(problems[i], *a);
        } else {
          (void)a;
          return std::nullopt;
        }
      };
      for (std::size_t n = 1;; n = n * 2 > N && n < N ? N : n * 2) {
        const std::span<const Candidate> first(chains.data(), std::min(n, Nc));
        CurvePoint pt;
        pt.n = static_cast<int>(n);
        auto pick = [&](Voting rule) -> std::optional<std::string> {
          const int k = eng.vote_index(first, rule, top_k);
          return k >= 0 ? first[static_cast<std::size_t>(k)].answer : std::nullopt;
        };
        pt.naive = pick(Voting::Naive);
        pt.majority = pick(Voting::Majority);
        pt.weighted = pick(Voting::Weighted);
        pt.top_k = pick(Voting::TopKMajority);
        pt.naive_correct = check(pt.naive);
        pt.majority_correct = check(pt.majority);
        pt.weighted_correct = check(pt.weighted);
        pt.top_k_correct = check(pt.top_k);
        curve.push_back(std::move(pt));
        if (n >= N) break;
      }
    }
    const int chosen = eng.vote_index(chains, params.voting, top_k);
    // Keep only the complete trajectories as candidates (chosen is re-found by node id).
    std::vector<Candidate> cands;
    int chosen_kept = -1;
    for (std::size_t j = 0; j < chains.size(); ++j) {
      if (chains[j].node == kNoNode) continue;
      if (static_cast<int>(j) == chosen) chosen_kept = static_cast<int>(cands.size());
      cands.push_back(std::move(chains[j]));
    }
    results.push_back(eng.make_result(i, std::move(cands), chosen_kept));
    results.back().curve = std::move(curve);
  }
  eng.finish_timing(results);
  return results;
}

template <>
struct AlgorithmTraits<BestOfNParams> {
  static constexpr std::string_view name = "best-of-n";
  static constexpr std::string_view budget_field = "n";
  static constexpr bool needs_step_verifier = false;
  static constexpr std::array<FieldFlag, 1> flags{{{"scoring", "scoring"}}};
  template <class P, class F>
  static void own_fields(P& p, F&& f) {
    f("n", p.n);
    f("scoring", p.scoring);
    f("curve", p.curve);
  }
  static void set_budget(BestOfNParams& p, int n) { p.n = n; }
  template <class... A>
  static std::vector<SearchResult> run(A&&... a) {
    return best_of_n(std::forward<A>(a)...);
  }
};

}  // namespace qstar
