// Diverse verifier tree search (Beeching, Tunstall & Rush 2024, HF blog "Scaling
// test-time compute"; search-and-learn dvts.py; equal to AlphaMath's step-level beam
// SBS(1, M) run N/M times).
//
// N/M independent subtrees per problem. Each subtree is a greedy chain: its tip proposes M
// next steps, the PRM scores them, and the best by aggregated score becomes the new tip.
// A subtree ends when its best candidate ends the solution (or nothing was proposed); its
// M last candidates are its completions: N in total, voted over at the end. Each iteration
// makes ONE generator call for the tips of every subtree of every problem and ONE verifier
// call. Cost per iteration: M steps and M scores per unfinished subtree.
#pragma once

#include <algorithm>
#include <array>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "qstar/search/detail/engine.hpp"

namespace qstar {

struct DvtsParams : CommonParams {
  /// Total completions N; there are N/M subtrees.
  int n = 16;
  /// Width M: candidates per subtree step.
  int width = 4;

  void validate() const {
    CommonParams::validate();
    if (n < 1) throw InvalidArgument("n must be >= 1");
    if (width < 1) throw InvalidArgument("width must be >= 1");
    if (width > n) throw InvalidArgument("width must be <= n");
    if (n % width != 0) throw InvalidArgument("n must be a multiple of width");
  }
};

template <Task T, Generator G, StepVerifier V>
std::vector<SearchResult> dvts(std::span<const Problem> problems, const T& task, G& gen, V& ver,
                               const DvtsParams& params, std::uint64_t seed) {
  params.validate();
  detail::Engine<T, G, V> eng(problems, task, gen, ver, params, seed);
  const std::size_t P = problems.size();
  // Subtrees that can ever get a node: the engine grants node requests in order and stops a
  // problem at the first it cannot grant, so under a node cap only the first
  // ceil((max_nodes - 1) / M) subtrees are ever extended. State for the others would cost
  // O(N) memory and time whatever the cap.
  const auto M = static_cast<std::size_t>(params.width);
  std::size_t S = static_cast<std::size_t>(params.n) / M;
  if (params.budget.max_nodes > 0)
    S = std::min(S, (static_cast<std::size_t>(params.budget.max_nodes - 1) + M - 1) / M);
  std::vector<std::vector<NodeId>> tip(P, std::vector<NodeId>(S, Tree::root()));
  std::vector<std::vector<char>> done(P, std::vector<char>(S, 0));
  std::vector<std::vector<std::vector<NodeId>>> last(P, std::vector<std::vector<NodeId>>(S));
  std::vector<detail::Expansion> wanted;
  std::vector<std::pair<std::size_t, std::size_t>> who;

  while (eng.any_active()) {
    eng.begin_iteration();
    wanted.clear();
    who.clear();
    for (std::size_t i = 0; i < P; ++i) {
      if (!eng.active(i)) continue;
      bool any = false;
      for (std::size_t s = 0; s < S; ++s)
        if (!done[i][s]) {
          wanted.push_back({i, tip[i][s], params.width, false, false});
          who.emplace_back(i, s);
          any = true;
        }
      if (!any) eng.stop(i, StopReason::Completed);
    }
    if (wanted.empty()) break;
    const auto got = eng.expand(wanted);
    std::vector<detail::Ref> fresh;
    for (std::size_t w = 0; w < wanted.size(); ++w)
      for (NodeId id : got[w]) fresh.push_back({wanted[w].problem, id});
    eng.verify_steps(fresh);
    for (std::size_t w = 0; w < wanted.size(); ++w) {
      const auto [i, s] = who[w];
      const Tree& t = eng.tree(i);
      if (got[w].empty()) {
        if (eng.active(i)) done[i][s] = 1;
        continue;
      }
      last[i][s] = got[w];
      NodeId best = kNoNode;
      double best_score = 0.0;
      for (NodeId id : got[w]) {
        if (!t[id].scored()) continue;
        const double sc = eng.path_score(i, id);
        if (best == kNoNode || sc > best_score) {
          best = id;
          best_score = sc;
        }
      }
      if (best == kNoNode || t[best].terminal) {
        done[i][s] = 1;
      } else {
        tip[i][s] = best;
      }
    }
  }

  std::vector<SearchResult> results;
  results.reserve(P);
  for (std::size_t i = 0; i < P; ++i) {
    const Tree& t = eng.tree(i);
    std::vector<Candidate> cands;
    for (std::size_t s = 0; s < S; ++s)
      for (NodeId id : last[i][s])
        if (t[id].terminal && t[id].scored()) cands.push_back(eng.make_candidate(i, id, eng.path_score(i, id)));
    const int chosen = eng.vote_index(cands, params.voting, static_cast<std::size_t>(params.top_k));
    results.push_back(eng.make_result(i, std::move(cands), chosen));
  }
  eng.finish_timing(results);
  return results;
}

template <>
struct AlgorithmTraits<DvtsParams> {
  static constexpr std::string_view name = "dvts";
  static constexpr std::string_view budget_field = "n";
  static constexpr bool needs_step_verifier = true;
  static constexpr std::array<FieldFlag, 1> flags{{{"width", "width"}}};
  template <class P, class F>
  static void own_fields(P& p, F&& f) {
    f("n", p.n);
    f("width", p.width);
  }
  /// A budget below the width shrinks the width.
  static void set_budget(DvtsParams& p, int n) {
    p.n = n;
    p.width = std::min(p.width, n);
  }
  template <class... A>
  static std::vector<SearchResult> run(A&&... a) {
    return dvts(std::forward<A>(a)...);
  }
};

}  // namespace qstar
