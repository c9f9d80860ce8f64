// Best-first search over partial trajectories (Q*, Wang et al. 2024, "Q*: Improving
// Multi-step Reasoning for LLMs with Deliberative Planning"; A*-style f = g + λ·h).
//
// A priority queue per problem keyed by f = g + λ·h, with g the aggregated path score
// (g_aggregation, min by default) and h the verifier's value of the node (the PRM's score of
// its last step). Each iteration pops the B best open nodes of every problem, expands each
// into K children with ONE generator call, scores them with ONE verifier call and pushes
// them. Terminals are ranked, and the early stop judged, by the same g aggregation.
// The generator's action space is open text, so a popped node is pushed back (same f)
// until it has been expanded max_node_expansions times: new samples from a good node can
// beat the children it gave so far. The root's f is 1 + λ (the top of the [0,1] scale).
// Ties in f go to the deeper node, then the fresher one (fewer expansions), then the lower
// id. A terminal whose aggregated score reaches stop_threshold ends the problem's search
// (stop reason "solved"); otherwise it runs until max_expansions pops or the queue empties.
// The answer is the best-scored terminal. Cost per iteration: B·K steps and B·K scores.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <queue>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "qstar/search/detail/engine.hpp"

namespace qstar {

struct BestFirstParams : CommonParams {
  /// Children generated per popped node (K).
  int expand_k = 4;
  /// Nodes popped per problem per iteration (B).
  int pops_per_iteration = 4;
  /// Pops per problem in total.
  int max_expansions = 64;
  /// Weight of the heuristic h in f = g + λ·h.
  double lambda = 1.0;
  /// Times one node may be popped and expanded (1: classic best-first, each node once).
  int max_node_expansions = 4;
  /// Aggregation of the path score g.
  Aggregation g_aggregation = Aggregation::Min;
  /// A terminal whose aggregated score is >= this ends the search (> 1 disables).
  double stop_threshold = 0.99;

  void validate() const {
    CommonParams::validate();
    if (expand_k < 1) throw InvalidArgument("expand_k must be >= 1");
    if (pops_per_iteration < 1) throw InvalidArgument("pops_per_iteration must be >= 1");
    if (max_expansions < 1) throw InvalidArgument("max_expansions must be >= 1");
    if (max_node_expansions < 1) throw InvalidArgument("max_node_expansions must be >= 1");
    if (!(lambda >= 0.0 && std::isfinite(lambda))) throw InvalidArgument("lambda must be finite and >= 0");
    if (g_aggregation == Aggregation::Custom)
      throw InvalidArgument("g_aggregation must be min, prod, last or mean");
    if (!(stop_threshold >= 0.0)) throw InvalidArgument("stop_threshold must be >= 0");
  }
};

template <Task T, Generator G, StepVerifier V>
std::vector<SearchResult> best_first(std::span<const Problem> problems, const T& task, G& gen,
                                     V& ver, const BestFirstParams& params, std::uint64_t seed) {
  params.validate();
  detail::Engine<T, G, V> eng(problems, task, gen, ver, params, seed);
  const std::size_t P = problems.size();
  struct Entry {
    double f;
    int depth;
    int expansions;
    NodeId id;
    // Max-heap order: higher f, then deeper, then fewer expansions, then lower id.
    bool operator<(const Entry& o) const noexcept {
      if (f != o.f) return f < o.f;
      if (depth != o.depth) return depth < o.depth;
      if (expansions != o.expansions) return expansions > o.expansions;
      return id > o.id;
    }
  };
  std::vector<std::priority_queue<Entry>> open(P);
  for (auto& q : open) q.push({1.0 + params.lambda, 0, 0, Tree::root()});
  std::vector<Entry> again;
  std::vector<int> pops(P, 0);
  std::vector<std::vector<NodeId>> terminals(P);
  std::vector<detail::Expansion> wanted;

  while (eng.any_active()) {
    eng.begin_iteration();
    wanted.clear();
    again.clear();
    std::vector<std::size_t> again_problem, again_wanted;
    for (std::size_t i = 0; i < P; ++i) {
      if (!eng.active(i)) continue;
      if (open[i].empty()) {
        eng.stop(i, StopReason::Exhausted);
        continue;
      }
      if (pops[i] >= params.max_expansions) {
        eng.stop(i, StopReason::Completed);
        continue;
      }
      for (int b = 0; b < params.pops_per_iteration && !open[i].empty() && pops[i] < params.max_expansions; ++b) {
        Entry e = open[i].top();
        open[i].pop();
        wanted.push_back({i, e.id, params.expand_k, false, false});
        ++pops[i];
        if (++e.expansions < params.max_node_expansions) {
          again.push_back(e);
          again_problem.push_back(i);
          again_wanted.push_back(wanted.size() - 1);
        }
      }
    }
    if (wanted.empty()) break;
    const auto got = eng.expand(wanted);
    std::vector<detail::Ref> fresh;
    for (std::size_t w = 0; w < wanted.size(); ++w)
      for (NodeId id : got[w]) fresh.push_back({wanted[w].problem, id});
    eng.verify_steps(fresh);
    for (const auto& ref : fresh) {
      const Tree& t = eng.tree(ref.problem);
      const Node& n = t[ref.node];
      if (!n.scored()) continue;
      if (n.terminal) {
        terminals[ref.problem].push_back(ref.node);
        if (n.answer >= 0 && aggregate_path(t, ref.node, params.g_aggregation) >= params.stop_threshold)
          eng.stop(ref.problem, StopReason::Solved);
        continue;
      }
      const double g = aggregate_path(t, ref.node, params.g_aggregation);
      open[ref.problem].push({g + params.lambda * n.score, n.depth, 0, ref.node});
    }
    // Re-push popped nodes that produced children (a node that got no proposal is done).
    for (std::size_t k = 0; k < again.size(); ++k)
      if (eng.active(again_problem[k]) && !got[again_wanted[k]].empty()) open[again_problem[k]].push(again[k]);
  }

  std::vector<SearchResult> results;
  results.reserve(P);
  for (std::size_t i = 0; i < P; ++i) {
    std::vector<Candidate> cands;
    int chosen = -1;
    for (NodeId id : terminals[i]) {
      cands.push_back(eng.make_candidate(i, id, aggregate_path(eng.tree(i), id, params.g_aggregation)));
      const auto& c = cands.back();
      if (c.answer && (chosen < 0 || c.score > cands[static_cast<std::size_t>(chosen)].score))
        chosen = static_cast<int>(cands.size()) - 1;
    }
    results.push_back(eng.make_result(i, std::move(cands), chosen));
  }
  eng.finish_timing(results);
  return results;
}

template <>
struct AlgorithmTraits<BestFirstParams> {
  static constexpr std::string_view name = "best-first";
  static constexpr std::string_view budget_field = "max_expansions";
  static constexpr bool needs_step_verifier = true;
  static constexpr std::array<FieldFlag, 6> flags{{{"expand-k", "expand_k"},
                                                   {"pops", "pops_per_iteration"},
                                                   {"lambda", "lambda"},
                                                   {"g-aggregation", "g_aggregation"},
                                                   {"threshold", "stop_threshold"},
                                                   {"node-expansions", "max_node_expansions"}}};
  template <class P, class F>
  static void own_fields(P& p, F&& f) {
    f("expand_k", p.expand_k);
    f("pops_per_iteration", p.pops_per_iteration);
    f("max_expansions", p.max_expansions);
    f("lambda", p.lambda);
    f("max_node_expansions", p.max_node_expansions);
    f("g_aggregation", p.g_aggregation);
    f("stop_threshold", p.stop_threshold);
  }
  static void set_budget(BestFirstParams& p, int n) { p.max_expansions = n; }
  template <class... A>
  static std::vector<SearchResult> run(A&&... a) {
    return best_first(std::forward<A>(a)...);
  }
};

}  // namespace qstar
