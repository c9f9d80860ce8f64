// Monte Carlo tree search over reasoning steps (AlphaZero/mctx PUCT; UCT, Kocsis &
// Szepesvári 2006; progressive widening, Coulom 2007; virtual loss as in OpenSpiel's
// async MCTS; priors from generator log-probabilities as in OpenR; Dirichlet root noise,
// AlphaZero; PRM/rollout leaf values mixed as in ReST-MCTS*, Zhang et al. 2024).
//
// Each iteration picks up to B leaves per problem, walking down by PUCT or UCT and adding a
// virtual loss on the way so the next pick goes elsewhere. ONE generator call expands every
// picked leaf of every problem (expand_k children for a fresh leaf; one more child when
// progressive widening allows it: children < ceil(pw_c · N(s)^pw_alpha)), and ONE verifier
// call scores every new child (with rollouts, the rollout steps too, after one extra
// generator call per rollout step). Each new child's value (its PRM score, its rollout's
// aggregated score, or the mix (1-α)·V + α·rollout) is backed up to the root (mean or max);
// the virtual losses are removed. A picked terminal leaf backs its value up again.
// Final choice: the most visited path, the best-valued path, or a vote over the terminals
// weighted by visits or score. Cost per iteration: B·expand_k steps and scores (+ rollouts).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <array>
#include <span>
#include <string_view>
#include <utility>
#include <vector>


#include "qstar/search/detail/engine.hpp"

namespace qstar {

enum class SelectionRule { Puct, Uct };
enum class BackupRule { Mean, Max };
enum class FinalChoice { Visits, Value, Vote };
enum class LeafEval { Value, Rollout, Mixed };

struct MctsParams : CommonParams {
  /// Simulations (picked leaves) per problem.
  int num_simulations = 64;
  /// Leaves picked per problem per iteration (B), spread out by virtual loss.
  int leaves_per_iteration = 4;
  /// Children generated when a leaf is expanded (only without progressive widening).
  int expand_k = 4;
  /// PUCT or UCT.
  SelectionRule selection = SelectionRule::Puct;
  /// PUCT c(s) = c_init + ln((N(s) + c_base + 1) / c_base).
  double c_puct_init = 1.25;
  double c_puct_base = 19652.0;
  /// UCT exploration constant.
  double c_uct = 1.41421356237;
  /// Grow children one at a time while children < ceil(pw_c · N(s)^pw_alpha), instead of
  /// expanding a fixed expand_k children once (the peers' way, and the default).
  bool progressive_widening = false;
  double pw_c = 1.0;
  double pw_alpha = 0.5;
  /// Virtual visits added per pick on the path (0 disables virtual loss).
  int virtual_loss = 10;
  /// The value a virtual visit counts as (the worst value of the verifier's scale).
  double virtual_loss_value = 0.0;
  /// How a new node is valued.
  LeafEval eval = LeafEval::Value;
  /// α of the mix (1-α)·V + α·rollout.
  double rollout_mix = 0.5;
  /// Rollouts at temperature 0 (else sampled).
  bool rollout_greedy = true;
  /// Mean or max backup.
  BackupRule backup = BackupRule::Mean;
  /// Dirichlet noise on the root priors: ε (0 disables) and α.
  double dirichlet_epsilon = 0.0;
  double dirichlet_alpha = 0.3;
  /// Min-max normalise Q over the parent and its visited children (for unbounded values).
  bool normalize_q = false;
  /// How the answer is chosen.
  FinalChoice final_choice = FinalChoice::Visits;
  /// With FinalChoice::Vote: weigh terminals by visits (else by aggregated score).
  bool vote_by_visits = true;

  void validate() const {
    CommonParams::validate();
    if (num_simulations < 1) throw InvalidArgument("num_simulations must be >= 1");
    if (leaves_per_iteration < 1) throw InvalidArgument("leaves_per_iteration must be >= 1");
    if (expand_k < 1) throw InvalidArgument("expand_k must be >= 1");
    // Infinite constants make inf * 0 = NaN selection scores: rejected with the NaNs.
    if (!(c_puct_init >= 0.0 && std::isfinite(c_puct_init))) throw InvalidArgument("c_puct_init must be finite and >= 0");
    if (!(c_puct_base > 0.0 && std::isfinite(c_puct_base))) throw InvalidArgument("c_puct_base must be finite and > 0");
    if (!(c_uct >= 0.0 && std::isfinite(c_uct))) throw InvalidArgument("c_uct must be finite and >= 0");
    if (!(pw_c > 0.0 && std::isfinite(pw_c))) throw InvalidArgument("pw_c must be finite and > 0");
    if (!(pw_alpha >= 0.0 && pw_alpha <= 1.0)) throw InvalidArgument("pw_alpha must be in [0,1]");
    if (virtual_loss < 0 || virtual_loss > 1000000) throw InvalidArgument("virtual_loss must be in [0, 1000000]");
    if (!std::isfinite(virtual_loss_value)) throw InvalidArgument("virtual_loss_value must be finite");
    if (!(rollout_mix >= 0.0 && rollout_mix <= 1.0)) throw InvalidArgument("rollout_mix must be in [0,1]");
    if (!(dirichlet_epsilon >= 0.0 && dirichlet_epsilon <= 1.0))
      throw InvalidArgument("dirichlet_epsilon must be in [0,1]");
    if (!(dirichlet_alpha > 0.0 && std::isfinite(dirichlet_alpha)))
      throw InvalidArgument("dirichlet_alpha must be finite and > 0");
  }
};

namespace mcts {

/// Q of a node under the backup rule (0 when unvisited).
inline double node_q(const Node& n, BackupRule rule) noexcept {
  if (n.visits <= 0) return 0.0;
  if (rule == BackupRule::Max) {
    const int real = n.visits - n.virtual_loss;
    return real > 0 ? n.value_max : 0.0;
  }
  return n.value_sum / n.visits;
}

/// PUCT exploration coefficient c(s) (AlphaZero / mctx).
inline double puct_c(double parent_visits, const MctsParams& p) noexcept {
  return p.c_puct_init + std::log((parent_visits + p.c_puct_base + 1.0) / p.c_puct_base);
}

/// Picks the child of `parent` to descend into (selection rule as a free function, mctx
/// style). Children that are pruned or unscored are skipped; returns kNoNode if none.
/// `noise` holds the Dirichlet share per child position (empty: no noise).
inline NodeId select_child(const Tree& t, NodeId parent, const MctsParams& p,
                           std::span<const double> noise = {}) {
  const Node& s = t[parent];
  const int k = s.num_children;
  if (k == 0) return kNoNode;
  // One pass gathers each child's Q (and the range for normalisation), a second scores
  // them: PUCT q + c(N) * prior * sqrt(N) / (1 + n), or UCT q + c * sqrt(ln N / n) with
  // unvisited children first. Up to 64 children live on the stack (no allocation).
  constexpr int kStack = 64;
  double stack_q[kStack];
  std::vector<double> heap_q;
  double* q = stack_q;
  if (k > kStack) {
    heap_q.resize(static_cast<std::size_t>(k));
    q = heap_q.data();
  }
  int j = 0;
  double qmin = node_q(s, p.backup), qmax = qmin;
  for (NodeId c : t.children(parent)) {
    const Node& cn = t[c];
    q[j] = node_q(cn, p.backup);
    if (cn.visits > 0) {
      qmin = std::min(qmin, q[j]);
      qmax = std::max(qmax, q[j]);
    }
    ++j;
  }
  const double range = std::max(qmax - qmin, 1e-12);
  const double N = std::max<double>(s.visits, 0.0);
  const double c = puct_c(N, p), sqrtN = std::sqrt(N), lnN = std::log(std::max(N, 1.0));
  NodeId best = kNoNode;
  double best_score = 0.0;
  j = 0;
  for (NodeId id : t.children(parent)) {
    const Node& cn = t[id];
    const int a = j++;
    if (cn.pruned || !cn.scored()) continue;
    const double qa = p.normalize_q ? (q[a] - qmin) / range : q[a];
    const double n = cn.visits;
    double score;
    if (p.selection == SelectionRule::Puct) {
      double prior = cn.prior;
      if (!noise.empty() && static_cast<std::size_t>(a) < noise.size())
        prior = (1.0 - p.dirichlet_epsilon) * cn.prior + p.dirichlet_epsilon * noise[static_cast<std::size_t>(a)];
      score = qa + c * prior * sqrtN / (1.0 + n);
    } else {
      score = n == 0 ? std::numeric_limits<double>::infinity() : qa + p.c_uct * std::sqrt(lnN / std::max(n, 1e-12));
    }
    if (best == kNoNode || score > best_score) {
      best = id;
      best_score = score;
    }
  }
  return best;
}

/// Sets the priors of parent's children to exp(logprob / num_tokens), normalised over the
/// siblings (OpenR). Steps of 0 tokens count as 1 token.
inline void set_priors(Tree& t, NodeId parent) {
  double sum = 0.0;
  for (NodeId c : t.children(parent)) {
    Node& n = t[c];
    n.prior = std::exp(n.logprob / std::max(1, n.num_tokens));
    sum += n.prior;
  }
  for (NodeId c : t.children(parent)) t[c].prior = sum > 0.0 ? t[c].prior / sum : 1.0 / t[parent].num_children;
}

/// May `node` gain a child now? Fresh leaves always may; with progressive widening a node
/// may while children < ceil(pw_c · N(s)^pw_alpha).
/// N(s) counts real visits only: virtual losses in flight do not earn children.
inline bool may_expand(const Node& n, const MctsParams& p) noexcept {
  if (n.terminal) return false;
  if (n.num_children == 0) return true;
  if (!p.progressive_widening) return false;
  const int real = std::max(n.visits - n.virtual_loss, 0);
  const double limit = std::ceil(p.pw_c * std::pow(static_cast<double>(real), p.pw_alpha));
  return n.num_children < std::max(1.0, limit);
}

}  // namespace mcts

template <Task T, Generator G, StepVerifier V>
std::vector<SearchResult> mcts_search(std::span<const Problem> problems, const T& task, G& gen,
                                      V& ver, const MctsParams& params, std::uint64_t seed) {
  params.validate();
  detail::Engine<T, G, V> eng(problems, task, gen, ver, params, seed);
  const std::size_t P = problems.size();
  std::vector<int> sims(P, 0);
  std::vector<std::vector<double>> noise(P);
  // Nodes whose widening request came back empty: they keep their children, gain no more.
  std::vector<std::vector<char>> saturated(P);
  auto can_expand = [&](std::size_t i, NodeId id) {
    const auto& sat = saturated[i];
    if (static_cast<std::size_t>(id) < sat.size() && sat[static_cast<std::size_t>(id)]) return false;
    return mcts::may_expand(eng.tree(i)[id], params);
  };
  struct Pick {
    std::size_t problem;
    NodeId leaf;
    std::vector<NodeId> path;  // root .. leaf
  };
  std::vector<Pick> picks;
  std::vector<char> pending;  // per problem: node ids picked for expansion this iteration

  auto apply_vl = [&](Tree& t, const std::vector<NodeId>& path, int sign) {
    const int n = params.virtual_loss;
    if (n == 0) return;
    for (NodeId id : path) {
      Node& nd = t[id];
      nd.visits += sign * n;
      nd.value_sum += sign * n * params.virtual_loss_value;
      nd.virtual_loss += sign * n;
    }
  };
  auto backup = [&](Tree& t, const std::vector<NodeId>& path, double v) {
    for (NodeId id : path) {
      Node& nd = t[id];
      nd.visits += 1;
      nd.value_sum += v;
      nd.value_max = std::max(nd.value_max, v);
    }
  };

  while (eng.any_active()) {
    eng.begin_iteration();
    picks.clear();
    std::vector<detail::Expansion> wanted;
    std::vector<std::size_t> wanted_pick;
    for (std::size_t i = 0; i < P; ++i) {
      if (!eng.active(i)) continue;
      if (sims[i] >= params.num_simulations) {
        eng.stop(i, StopReason::Completed);
        continue;
      }
      Tree& t = eng.tree(i);
      pending.assign(t.size(), 0);
      for (int b = 0; b < params.leaves_per_iteration && sims[i] < params.num_simulations; ++b) {
        std::vector<NodeId> path{Tree::root()};
        NodeId cur = Tree::root();
        bool collided = false;
        for (;;) {
          const Node& n = t[cur];
          if (pending[static_cast<std::size_t>(cur)]) {
            collided = true;
            break;
          }
          if (n.terminal || can_expand(i, cur)) break;
          const NodeId next = mcts::select_child(
              t, cur, params, cur == Tree::root() ? std::span<const double>(noise[i]) : std::span<const double>());
          if (next == kNoNode) {
            collided = true;  // every child unusable: a dead end
            break;
          }
          cur = next;
          path.push_back(cur);
        }
        if (collided) break;
        ++sims[i];
        apply_vl(t, path, +1);
        if (!t[cur].terminal) {
          pending[static_cast<std::size_t>(cur)] = 1;
          const int k = t[cur].num_children == 0 && !params.progressive_widening ? params.expand_k : 1;
          wanted.push_back({i, cur, k, false, false});
          wanted_pick.push_back(picks.size());
        }
        picks.push_back({i, cur, std::move(path)});
      }
      if (picks.empty() || picks.back().problem != i) eng.stop(i, StopReason::Exhausted);
    }
    if (picks.empty()) break;

    const auto got = eng.expand(wanted);
    std::vector<std::vector<NodeId>> children(picks.size());
    std::vector<detail::Ref> fresh;
    for (std::size_t w = 0; w < wanted.size(); ++w) {
      const std::size_t pk = wanted_pick[w];
      children[pk] = got[w];
      Tree& t = eng.tree(wanted[w].problem);
      if (!got[w].empty()) mcts::set_priors(t, wanted[w].node);
      for (NodeId id : got[w]) fresh.push_back({wanted[w].problem, id});
      // Root noise over the root's current children, redrawn whenever their number changes
      // (progressive widening), from a stream keyed by that number: deterministic.
      const auto kids = static_cast<std::size_t>(t[Tree::root()].num_children);
      if (wanted[w].node == Tree::root() && params.dirichlet_epsilon > 0.0 && kids > 0 &&
          noise[wanted[w].problem].size() != kids) {
        Rng rng = eng.problem_rng(wanted[w].problem, kids);
        noise[wanted[w].problem] = rng.dirichlet(kids, params.dirichlet_alpha);
      }
    }
    // Rollouts from every new non-terminal child (detached nodes), one step per call.
    std::vector<NodeId> rollout_tip(fresh.size(), kNoNode);
    if (params.eval != LeafEval::Value) {
      for (std::size_t f = 0; f < fresh.size(); ++f) rollout_tip[f] = fresh[f].node;
      for (int step = 0; step < params.max_depth; ++step) {
        std::vector<detail::Expansion> roll;
        std::vector<std::size_t> at;
        for (std::size_t f = 0; f < fresh.size(); ++f)
          if (!eng.tree(fresh[f].problem)[rollout_tip[f]].terminal) {
            roll.push_back({fresh[f].problem, rollout_tip[f], 1, params.rollout_greedy, true});
            at.push_back(f);
          }
        if (roll.empty()) break;
        const auto r = eng.expand(roll);
        bool progressed = false;
        for (std::size_t k = 0; k < roll.size(); ++k)
          if (!r[k].empty()) {
            rollout_tip[at[k]] = r[k][0];
            progressed = true;
          } else if (eng.active(roll[k].problem) && eng.tree(roll[k].problem)[rollout_tip[at[k]]].detached) {
            eng.tree(roll[k].problem)[rollout_tip[at[k]]].terminal = true;  // the rollout dead-ends
          }
        if (!progressed) break;
      }
      std::vector<detail::Ref> tips;
      for (std::size_t f = 0; f < fresh.size(); ++f) tips.push_back({fresh[f].problem, rollout_tip[f]});
      eng.verify_steps(tips);
    } else {
      eng.verify_steps(fresh);
    }
    // Leaf values.
    for (std::size_t f = 0; f < fresh.size(); ++f) {
      Tree& t = eng.tree(fresh[f].problem);
      Node& n = t[fresh[f].node];
      if (!n.scored()) continue;
      double v = n.score;
      if (params.eval != LeafEval::Value) {
        const NodeId tipn = rollout_tip[f];
        const double r = t[tipn].scored() && !t[tipn].pruned ? eng.path_score(fresh[f].problem, tipn) : 0.0;
        v = params.eval == LeafEval::Rollout ? r : (1.0 - params.rollout_mix) * v + params.rollout_mix * r;
      }
      n.value = v;
    }
    // Backup: remove virtual losses, then back each new value (or a terminal's) up.
    for (std::size_t pk = 0; pk < picks.size(); ++pk) {
      auto& pick = picks[pk];
      Tree& t = eng.tree(pick.problem);
      apply_vl(t, pick.path, -1);
      if (t[pick.leaf].terminal) {
        const double v = std::isnan(t[pick.leaf].value) ? (t[pick.leaf].scored() ? t[pick.leaf].score : 0.0)
                                                         : t[pick.leaf].value;
        backup(t, pick.path, v);
        continue;
      }
      bool any = false;
      for (NodeId c : children[pk]) {
        Node& cn = t[c];
        if (!cn.scored() || std::isnan(cn.value)) continue;
        any = true;
        cn.visits = 1;
        cn.value_sum = cn.value;
        cn.value_max = cn.value;
        backup(t, pick.path, cn.value);
      }
      if (!any && children[pk].empty() && eng.active(pick.problem)) {
        if (t[pick.leaf].num_children == 0) {
          // Nothing was proposed for a fresh leaf: it is a dead end.
          t[pick.leaf].terminal = true;
          backup(t, pick.path, params.virtual_loss_value);
        } else {
          // A widening request came back empty: keep the children, stop widening here.
          auto& sat = saturated[pick.problem];
          if (sat.size() <= static_cast<std::size_t>(pick.leaf)) sat.resize(static_cast<std::size_t>(pick.leaf) + 1, 0);
          sat[static_cast<std::size_t>(pick.leaf)] = 1;
        }
      }
    }
    // A root that turned out to be a dead end leaves nothing to search. (Terminal leaves
    // elsewhere are re-selected and back their values up again, as in AlphaZero.)
    for (std::size_t i = 0; i < P; ++i)
      if (eng.active(i) && eng.tree(i)[Tree::root()].terminal) eng.stop(i, StopReason::Exhausted);
  }

  std::vector<SearchResult> results;
  results.reserve(P);
  for (std::size_t i = 0; i < P; ++i) {
    const Tree& t = eng.tree(i);
    std::vector<Candidate> cands;
    std::vector<double> visit_w;
    for (NodeId id = 1; id < static_cast<NodeId>(t.size()); ++id) {
      const Node& n = t[id];
      if (!n.terminal || n.detached || n.pruned || !n.scored()) continue;
      cands.push_back(eng.make_candidate(i, id, eng.path_score(i, id)));
      visit_w.push_back(static_cast<double>(n.visits));
    }
    auto index_of = [&](NodeId id) {
      for (std::size_t c = 0; c < cands.size(); ++c)
        if (cands[c].node == id) return static_cast<int>(c);
      return -1;
    };
    int chosen = -1;
    if (params.final_choice == FinalChoice::Vote) {
      std::vector<Candidate> weighted = cands;
      if (params.vote_by_visits)
        for (std::size_t c = 0; c < weighted.size(); ++c) weighted[c].score = visit_w[c];
      chosen = eng.vote_index(weighted, Voting::Weighted, 0);
    } else {
      NodeId cur = Tree::root();
      for (;;) {
        NodeId best = kNoNode;
        for (NodeId c : t.children(cur)) {
          const Node& cn = t[c];
          if (cn.pruned || !cn.scored()) continue;
          if (best == kNoNode) {
            best = c;
            continue;
          }
          const Node& bn = t[best];
          const double qc = mcts::node_q(cn, params.backup), qb = mcts::node_q(bn, params.backup);
          const bool better = params.final_choice == FinalChoice::Visits
                                  ? (cn.visits > bn.visits || (cn.visits == bn.visits && qc > qb))
                                  : (qc > qb || (qc == qb && cn.visits > bn.visits));
          if (better) best = c;
        }
        if (best == kNoNode) break;
        cur = best;
        if (t[cur].terminal) break;
      }
      if (cur != Tree::root() && t[cur].terminal && t[cur].answer >= 0) chosen = index_of(cur);
      if (chosen < 0) {  // the path ends early: fall back to the best-valued terminal
        for (std::size_t c = 0; c < cands.size(); ++c)
          if (cands[c].answer && (chosen < 0 || cands[c].score > cands[static_cast<std::size_t>(chosen)].score))
            chosen = static_cast<int>(c);
      }
    }
    results.push_back(eng.make_result(i, std::move(cands), chosen));
  }
  eng.finish_timing(results);
  return results;
}

template <>
struct AlgorithmTraits<MctsParams> {
  static constexpr std::string_view name = "mcts";
  static constexpr std::string_view budget_field = "num_simulations";
  static constexpr bool needs_step_verifier = true;
  static constexpr std::array<FieldFlag, 19> flags{{{"leaves", "leaves_per_iteration"},
                                                    {"expand-k", "expand_k"},
                                                    {"selection", "selection"},
                                                    {"c-puct", "c_puct_init"},
                                                    {"c-puct-base", "c_puct_base"},
                                                    {"c-uct", "c_uct"},
                                                    {"widening", "progressive_widening"},
                                                    {"pw-c", "pw_c"},
                                                    {"pw-alpha", "pw_alpha"},
                                                    {"virtual-loss", "virtual_loss"},
                                                    {"eval", "eval"},
                                                    {"rollout-mix", "rollout_mix"},
                                                    {"sampled-rollouts", "rollout_greedy", true},
                                                    {"backup", "backup"},
                                                    {"dirichlet-eps", "dirichlet_epsilon"},
                                                    {"dirichlet-alpha", "dirichlet_alpha"},
                                                    {"normalize-q", "normalize_q"},
                                                    {"final", "final_choice"},
                                                    {"vote-by-score", "vote_by_visits", true}}};
  template <class P, class F>
  static void own_fields(P& p, F&& f) {
    f("num_simulations", p.num_simulations);
    f("leaves_per_iteration", p.leaves_per_iteration);
    f("expand_k", p.expand_k);
    f("selection", p.selection);
    f("c_puct_init", p.c_puct_init);
    f("c_puct_base", p.c_puct_base);
    f("c_uct", p.c_uct);
    f("progressive_widening", p.progressive_widening);
    f("pw_c", p.pw_c);
    f("pw_alpha", p.pw_alpha);
    f("virtual_loss", p.virtual_loss);
    f("virtual_loss_value", p.virtual_loss_value);
    f("eval", p.eval);
    f("rollout_mix", p.rollout_mix);
    f("rollout_greedy", p.rollout_greedy);
    f("backup", p.backup);
    f("dirichlet_epsilon", p.dirichlet_epsilon);
    f("dirichlet_alpha", p.dirichlet_alpha);
    f("normalize_q", p.normalize_q);
    f("final_choice", p.final_choice);
    f("vote_by_visits", p.vote_by_visits);
  }
  static void set_budget(MctsParams& p, int n) { p.num_simulations = n; }
  template <class... A>
  static std::vector<SearchResult> run(A&&... a) {
    return mcts_search(std::forward<A>(a)...);
  }
};

}  // namespace qstar
