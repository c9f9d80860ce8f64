// Independent sampled chains (the best-of-N family: adaptive-best-of-n, deepconf): the
// per-problem chain state, the batched step of every open chain, and the candidates a vote
// is taken over. Each algorithm decides when chains are opened and when a problem stops.
#pragma once

#include <cmath>
#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "qstar/search/best_of_n.hpp"
#include "qstar/search/detail/engine.hpp"

namespace qstar::detail {

/// The chains of one problem: their tips (root before the first step) and whether each ended.
struct Chains {
  std::vector<NodeId> tip;
  std::vector<char> done;
  std::size_t size() const noexcept { return tip.size(); }
  void open(std::size_t count) {
    tip.resize(tip.size() + count, Tree::root());
    done.resize(done.size() + count, 0);
  }
  bool all_done() const {
    for (char d : done)
      if (!d) return false;
    return true;
  }
};

/// Chains a problem can ever extend under a node cap (best_of_n.hpp explains): n, or
/// max_nodes - 1 when that is smaller.
inline std::size_t usable_chains(int n, const Budget& b) {
  const auto N = static_cast<std::size_t>(n);
  return b.max_nodes > 0 ? std::min(N, static_cast<std::size_t>(b.max_nodes - 1)) : N;
}

/// One iteration: one generator call with one request per open chain of every active problem
/// (in problem, then chain order), then the verifier call the scoring asks for. Returns the
/// (problem, chain) pairs that got a new step this iteration. `after_step(i, j)` runs for
/// every chain that got a step (before verification), and may end it by setting done.
template <class T, class G, class V>
std::vector<std::pair<std::size_t, std::size_t>> step_chains(Engine<T, G, V>& eng, std::vector<Chains>& chains,
                                                             Scoring scoring) {
  std::vector<Expansion> wanted;
  std::vector<std::pair<std::size_t, std::size_t>> who, stepped;
  for (std::size_t i = 0; i < chains.size(); ++i) {
    if (!eng.active(i)) continue;
    for (std::size_t j = 0; j < chains[i].size(); ++j)
      if (!chains[i].done[j]) {
        wanted.push_back({i, chains[i].tip[j], 1, false, false});
        who.emplace_back(i, j);
      }
  }
  if (wanted.empty()) return stepped;
  const auto got = eng.expand(wanted);
  std::vector<Ref> fresh, ended;
  for (std::size_t w = 0; w < wanted.size(); ++w) {
    const auto [i, j] = who[w];
    if (got[w].empty()) {
      if (eng.active(i)) chains[i].done[j] = 1;  // no proposal: the chain ends without an answer
      continue;
    }
    const NodeId id = got[w][0];
    chains[i].tip[j] = id;
    fresh.push_back({i, id});
    stepped.emplace_back(i, j);
    if (eng.tree(i)[id].terminal) {
      chains[i].done[j] = 1;
      ended.push_back({i, id});
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
  return stepped;
}

/// Whether chain leaf `leaf` is a complete, voteable trajectory under `scoring`.
inline bool usable_leaf(const Tree& t, NodeId leaf, Scoring scoring) {
  const Node& n = t[leaf];
  return leaf != Tree::root() && n.terminal && !n.pruned && (scoring != Scoring::Prm || n.scored()) &&
         (scoring != Scoring::Orm || !std::isnan(n.value));
}

/// One candidate per chain, in chain order (the vote's tie-break order); a chain without a
/// usable trajectory gets an empty candidate (node kNoNode), which takes no part in a vote.
/// score(j, leaf) gives usable chain j's score.
template <class T, class G, class V, class Score>
std::vector<Candidate> chain_candidates(const Engine<T, G, V>& eng, std::size_t i, const Chains& c,
                                        Scoring scoring, Score&& score) {
  std::vector<Candidate> out;
  out.reserve(c.size());
  for (std::size_t j = 0; j < c.size(); ++j) {
    const NodeId leaf = c.tip[j];
    if (!usable_leaf(eng.tree(i), leaf, scoring)) {
      out.emplace_back();
      continue;
    }
    out.push_back(eng.make_candidate(i, leaf, score(j, leaf)));
  }
  return out;
}

/// The result of problem i from its per-chain candidates: votes with the configured rule and
/// keeps the non-empty candidates.
template <class T, class G, class V>
SearchResult chain_result(Engine<T, G, V>& eng, std::size_t i, std::vector<Candidate> per_chain) {
  const int chosen = eng.vote_index(per_chain, eng.params().voting, static_cast<std::size_t>(eng.params().top_k));
  std::vector<Candidate> cands;
  int chosen_kept = -1;
  for (std::size_t j = 0; j < per_chain.size(); ++j) {
    if (per_chain[j].node == kNoNode) continue;
    if (static_cast<int>(j) == chosen) chosen_kept = static_cast<int>(cands.size());
    cands.push_back(std::move(per_chain[j]));
  }
  return eng.make_result(i, std::move(cands), chosen_kept);
}

}  // namespace qstar::detail
