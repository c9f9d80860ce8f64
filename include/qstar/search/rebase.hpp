// REBASE, reward balanced search (Wu, Sun, Li, Welleck & Yang 2024, "Inference Scaling
// Laws: An Empirical Analysis of Compute-Optimal Inference for Problem-Solving with
// Language Models", section 3.2).
//
// A tree grown one depth per iteration with a fixed number N of completions. The root
// proposes N first steps. At each later depth the expansion budget is B = N minus the
// completions so far, and it is split among the depth's unfinished nodes in proportion to
// softmax(score / T) (score: the node's aggregated step score; T: the balance temperature):
// node j gets W_j children, the W_j rounded by the largest-remainder method so that they
// sum to B exactly (allocate_budget in search/weights.hpp). Good nodes get more children,
// weak ones none. Each iteration makes ONE generator call (one request of W_j candidates per
// node with W_j > 0, all problems together) and ONE verifier call scoring the new nodes. A
// new node that ends its trajectory (final answer, or max_depth) is a completion; the others
// form the next depth. The search stops when N completions exist (B = 0) or no unfinished
// node is left; the answer is voted over the completions (CommonParams::voting, weighted by
// default). Cost per iteration: B <= N steps and B scores.
//
// Conventions: the paper rounds each W_j on its own (the sum may differ from B); qstar
// rounds by largest remainders (ties to the earlier node) so every depth spends exactly B.
// Nodes of earlier depths that got no children are not revisited.
#pragma once

#include <array>
#include <cmath>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "qstar/search/detail/engine.hpp"
#include "qstar/search/weights.hpp"

namespace qstar {

struct RebaseParams : CommonParams {
  /// Completions N: the root proposes N first steps; each depth expands N minus the
  /// completions so far.
  int n = 16;
  /// Balance temperature T of softmax(score / T) that splits a depth's budget (score: the
  /// aggregated step score in [0, 1]): lower gives the best nodes more of it.
  double temperature = 0.2;

  void validate() const {
    CommonParams::validate();
    if (n < 1) throw InvalidArgument("n must be >= 1");
    if (!(temperature > 0.0) || !std::isfinite(temperature))
      throw InvalidArgument("temperature must be > 0 and finite");
  }
};

template <Task T, Generator G, StepVerifier V>
std::vector<SearchResult> rebase_search(std::span<const Problem> problems, const T& task, G& gen, V& ver,
                                        const RebaseParams& params, std::uint64_t seed) {
  params.validate();
  detail::Engine<T, G, V> eng(problems, task, gen, ver, params, seed);
  const std::size_t P = problems.size();
  std::vector<std::vector<NodeId>> frontier(P, std::vector<NodeId>{Tree::root()});
  std::vector<std::vector<NodeId>> completed(P);
  std::vector<detail::Expansion> wanted;

  while (eng.any_active()) {
    eng.begin_iteration();
    wanted.clear();
    for (std::size_t i = 0; i < P; ++i) {
      if (!eng.active(i)) continue;
      const int budget = params.n - static_cast<int>(completed[i].size());
      if (budget <= 0 || frontier[i].empty()) {
        eng.stop(i, completed[i].empty() ? StopReason::Exhausted : StopReason::Completed);
        continue;
      }
      std::vector<double> scores;
      scores.reserve(frontier[i].size());
      for (NodeId id : frontier[i]) scores.push_back(id == Tree::root() ? 0.0 : eng.path_score(i, id));
      const std::vector<int> widths = allocate_budget(scores, budget, params.temperature);
      for (std::size_t j = 0; j < frontier[i].size(); ++j)
        if (widths[j] > 0) wanted.push_back({i, frontier[i][j], widths[j], false, false});
    }
    if (wanted.empty()) break;
    const auto got = eng.expand(wanted);
    std::vector<detail::Ref> fresh;
    for (std::size_t w = 0; w < wanted.size(); ++w)
      for (NodeId id : got[w]) fresh.push_back({wanted[w].problem, id});
    eng.verify_steps(fresh);

    for (std::size_t i = 0; i < P; ++i) frontier[i].clear();
    eng.split_children(wanted, got, completed, frontier);
    for (std::size_t i = 0; i < P; ++i)
      if (eng.active(i) && (completed[i].size() >= static_cast<std::size_t>(params.n) || frontier[i].empty()))
        eng.stop(i, completed[i].empty() ? StopReason::Exhausted : StopReason::Completed);
  }

  return eng.vote_results(completed, params.voting, static_cast<std::size_t>(params.top_k));
}

template <>
struct AlgorithmTraits<RebaseParams> {
  static constexpr std::string_view name = "rebase";
  static constexpr std::string_view budget_field = "n";
  static constexpr bool needs_step_verifier = true;
  static constexpr std::array<FieldFlag, 1> flags{{{"score-temperature", "temperature"}}};
  template <class P, class F>
  static void own_fields(P& p, F&& f) {
    f("n", p.n);
    f("temperature", p.temperature);
  }
  static void set_budget(RebaseParams& p, int n) { p.n = n; }
  template <class... A>
  static std::vector<SearchResult> run(A&&... a) {
    return rebase_search(std::forward<A>(a)...);
  }
};

}  // namespace qstar
