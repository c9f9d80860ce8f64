// Step-level beam search (Snell et al. 2024, "Scaling LLM Test-Time Compute Optimally";
// HF search-and-learn beam_search.py; Yao et al. 2023's ToT-BFS is the propose-style case).
//
// N beams, width M. The root proposes N first steps; after that each of the N/M surviving
// beams proposes M next steps. Each iteration makes ONE generator call for every beam of
// every problem and ONE verifier call scoring every new prefix; the N/M best non-terminal
// candidates by aggregated score survive, terminal ones move to the completed set. With
// lookahead k each candidate is first rolled k more steps greedily (k extra generator
// calls, detached nodes) and ranked by the aggregated score at the end of the rollout.
// Stops when N beams completed, nothing is left, or max_depth. The answer is voted over
// the completed beams. Cost per iteration: N steps (+ N·k lookahead), N scores.
#pragma once

#include <algorithm>
#include <array>
#include <span>
#include <string>
#include <unordered_set>
#include <string_view>
#include <utility>
#include <vector>

#include "qstar/search/detail/engine.hpp"

namespace qstar {

struct BeamParams : CommonParams {
  /// Total beams N (candidates per iteration).
  int num_beams = 16;
  /// Width M: next steps proposed per surviving beam; N/M beams survive each iteration.
  int width = 4;
  /// Greedy lookahead steps before scoring (0: score the candidate itself).
  int lookahead = 0;
  /// Drop candidates whose whole trajectory text equals an earlier candidate's.
  bool dedup = false;

  void validate() const {
    CommonParams::validate();
    if (num_beams < 1) throw InvalidArgument("num_beams must be >= 1");
    if (width < 1) throw InvalidArgument("width must be >= 1");
    if (width > num_beams) throw InvalidArgument("width must be <= num_beams");
    if (num_beams % width != 0) throw InvalidArgument("num_beams must be a multiple of width");
    if (lookahead < 0) throw InvalidArgument("lookahead must be >= 0");
  }
};

template <Task T, Generator G, StepVerifier V>
std::vector<SearchResult> beam_search(std::span<const Problem> problems, const T& task, G& gen,
                                      V& ver, const BeamParams& params, std::uint64_t seed) {
  params.validate();
  detail::Engine<T, G, V> eng(problems, task, gen, ver, params, seed);
  const std::size_t P = problems.size();
  const auto keep = static_cast<std::size_t>(params.num_beams / params.width);
  std::vector<std::vector<NodeId>> beams(P, std::vector<NodeId>{Tree::root()});
  std::vector<std::vector<NodeId>> completed(P);
  std::vector<detail::Expansion> wanted;
  std::vector<std::size_t> owner;

  while (eng.any_active()) {
    eng.begin_iteration();
    wanted.clear();
    for (std::size_t i = 0; i < P; ++i) {
      if (!eng.active(i)) continue;
      for (NodeId b : beams[i])
        wanted.push_back({i, b, b == Tree::root() ? params.num_beams : params.width, false, false});
    }
    if (wanted.empty()) break;
    const auto got = eng.expand(wanted);
    // Candidates per problem, in request order.
    std::vector<std::vector<NodeId>> cand(P);
    for (std::size_t w = 0; w < wanted.size(); ++w)
      for (NodeId id : got[w]) cand[wanted[w].problem].push_back(id);
    if (params.dedup) {
      for (std::size_t i = 0; i < P; ++i) {
        std::unordered_set<std::string> seen;
        std::vector<NodeId> kept;
        for (NodeId id : cand[i])
          if (seen.insert(eng.tree(i).trajectory(id).joined(std::string_view("\x1f\x1e", 2))).second) kept.push_back(id);
        cand[i] = std::move(kept);
      }
    }
    // Lookahead: roll each non-terminal candidate greedily; score at the rollout's tip.
    std::vector<std::vector<NodeId>> tip(P);
    for (std::size_t i = 0; i < P; ++i) tip[i] = cand[i];
    for (int step = 0; step < params.lookahead; ++step) {
      std::vector<detail::Expansion> roll;
      std::vector<std::pair<std::size_t, std::size_t>> at;
      for (std::size_t i = 0; i < P; ++i)
        for (std::size_t c = 0; c < tip[i].size(); ++c)
          if (!eng.tree(i)[tip[i][c]].terminal) {
            roll.push_back({i, tip[i][c], 1, true, true});
            at.emplace_back(i, c);
          }
      if (roll.empty()) break;
      const auto r = eng.expand(roll);
      for (std::size_t k = 0; k < roll.size(); ++k)
        if (!r[k].empty()) tip[at[k].first][at[k].second] = r[k][0];
    }
    std::vector<detail::Ref> leaves;
    for (std::size_t i = 0; i < P; ++i)
      for (NodeId id : tip[i]) leaves.push_back({i, id});
    eng.verify_steps(leaves);

    for (std::size_t i = 0; i < P; ++i) {
      if (cand[i].empty()) {
        beams[i].clear();
        if (eng.active(i)) eng.stop(i, completed[i].empty() ? StopReason::Exhausted : StopReason::Completed);
        continue;
      }
      const Tree& t = eng.tree(i);
      std::vector<std::pair<double, NodeId>> pool;
      for (std::size_t c = 0; c < cand[i].size(); ++c) {
        const NodeId id = cand[i][c];
        const NodeId end = tip[i][c];
        if (!t[id].scored() || t[end].pruned || !t[end].scored()) continue;
        const double s = eng.path_score(i, end);
        if (t[id].terminal) {
          completed[i].push_back(id);
        } else {
          pool.emplace_back(s, id);
        }
      }
      std::stable_sort(pool.begin(), pool.end(),
                       [](const auto& a, const auto& b) { return a.first > b.first; });
      if (pool.size() > keep) pool.resize(keep);
      beams[i].clear();
      for (const auto& p : pool) beams[i].push_back(p.second);
      if (!eng.active(i)) continue;
      if (completed[i].size() >= static_cast<std::size_t>(params.num_beams)) {
        eng.stop(i, StopReason::Completed);
      } else if (beams[i].empty()) {
        eng.stop(i, completed[i].empty() ? StopReason::Exhausted : StopReason::Completed);
      }
    }
  }

  return eng.vote_results(completed, params.voting, static_cast<std::size_t>(params.top_k));
}

template <>
struct AlgorithmTraits<BeamParams> {
  static constexpr std::string_view name = "beam";
  static constexpr std::string_view budget_field = "num_beams";
  static constexpr bool needs_step_verifier = true;
  static constexpr std::array<FieldFlag, 3> flags{{{"width", "width"}, {"lookahead", "lookahead"}, {"dedup", "dedup"}}};
  template <class P, class F>
  static void own_fields(P& p, F&& f) {
    f("num_beams", p.num_beams);
    f("width", p.width);
    f("lookahead", p.lookahead);
    f("dedup", p.dedup);
  }
  /// A budget below the width shrinks the width.
  static void set_budget(BeamParams& p, int n) {
    p.num_beams = n;
    p.width = std::min(p.width, n);
  }
  template <class... A>
  static std::vector<SearchResult> run(A&&... a) {
    return beam_search(std::forward<A>(a)...);
  }
};

}  // namespace qstar
