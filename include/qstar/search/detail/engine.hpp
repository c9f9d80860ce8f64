// The machinery every search shares (lc0-style named phases): per-problem trees, budgets
// and stats; the batched `expand` and `verify` phases with their contract checks, batch
// splitting to the plug-ins' max_batch_size, timing and budget enforcement; and the
// assembly of SearchResults. Algorithms only decide *what* to expand and keep.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "qstar/core/aggregate.hpp"
#include "qstar/core/concepts.hpp"
#include "qstar/core/rng.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/core/voting.hpp"
#include "qstar/search/params.hpp"
#include "qstar/search/result.hpp"

namespace qstar::detail {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// Calls f(), turning any exception that is not already a qstar::Error into a PluginError
/// that names the plug-in and nests the original (std::rethrow_if_nested recovers it).
template <class F>
auto call_plugin(const std::string& who, const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::throw_with_nested(PluginError(fmt::format("{} '{}' threw in {}: {}", what, who,
                                                   what == std::string("generator") ? "expand"
                                                                                    : "scoring",
                                                   e.what())));
  } catch (...) {
    std::throw_with_nested(PluginError(fmt::format("{} '{}' threw a non-standard exception",
                                                   what, who)));
  }
}

/// A (problem, node) pair.
struct Ref {
  std::size_t problem = 0;
  NodeId node = kNoNode;
};

/// One expansion wanted by an algorithm.
struct Expansion {
  std::size_t problem = 0;
  NodeId node = kNoNode;       ///< expand after this node
  std::int32_t k = 1;          ///< candidates wanted
  bool greedy = false;         ///< temperature 0
  bool detached = false;       ///< new nodes are rollout/lookahead nodes
};

template <class T, class G, class V>
class Engine {
 public:
  struct ProblemState {
    Tree tree;
    std::string prompt;
    Stats stats;
    StopReason stop = StopReason::Running;
    double gen_share = 0.0, ver_share = 0.0;
    bool budget_truncated = false;  // a step was cut by the token budget
    std::uint64_t key = 0;  // seeds derive from this, so a problem's search does not depend
                            // on which other problems are searched with it
  };

  /// FNV-1a of the problem's id and text.
  static std::uint64_t problem_key(const Problem& p) noexcept {
    std::uint64_t h = 1469598103934665603ull;
    auto mix = [&h](std::string_view s) {
      for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
      h = (h ^ 0xffu) * 1099511628211ull;
    };
    mix(p.id);
    mix(p.text);
    return h;
  }

  Engine(std::span<const Problem> problems, const T& task, G& gen, V& ver,
         const CommonParams& params, std::uint64_t seed)
      : problems_(problems),
        task_(task),
        gen_(gen),
        ver_(ver),
        params_(params),
        seed_(seed),
        gen_name_(plugin_name(gen, "generator")),
        ver_name_(plugin_name(ver, "verifier")),
        start_(Clock::now()) {
    params_.validate();
    states_.resize(problems.size());
    for (std::size_t i = 0; i < problems.size(); ++i) {
      states_[i].prompt = task.format(problems[i]);
      states_[i].key = problem_key(problems[i]);
    }
  }

  std::size_t size() const noexcept { return states_.size(); }
  const Problem& problem(std::size_t i) const { return problems_[i]; }
  Tree& tree(std::size_t i) { return states_[i].tree; }
  const Tree& tree(std::size_t i) const { return states_[i].tree; }
  Stats& stats(std::size_t i) { return states_[i].stats; }
  const T& task() const { return task_; }
  const CommonParams& params() const { return params_; }
  std::uint64_t seed() const { return seed_; }
  bool active(std::size_t i) const { return states_[i].stop == StopReason::Running; }
  bool any_active() const {
    for (const auto& s : states_)
      if (s.stop == StopReason::Running) return true;
    return false;
  }
  StopReason stop_reason(std::size_t i) const { return states_[i].stop; }
  /// Ends problem i's search (the first reason given wins).
  void stop(std::size_t i, StopReason r) {
    if (states_[i].stop == StopReason::Running) states_[i].stop = r;
  }
  /// Start of an iteration: calls params.interrupt (which may throw to cancel the search),
  /// applies the wall-clock cap; counts the iteration.
  void begin_iteration() {
    if (params_.interrupt) params_.interrupt();
    const double cap = params_.budget.max_wall_seconds;
    const bool over = cap > 0.0 && seconds_since(start_) >= cap;
    for (std::size_t i = 0; i < states_.size(); ++i) {
      if (!active(i)) continue;
      if (over) {
        stop(i, StopReason::WallTime);
      } else {
        ++states_[i].stats.iterations;
      }
    }
  }

  /// A per-problem random stream (Dirichlet noise, tie breaks), independent of batching.
  Rng problem_rng(std::size_t i, std::uint64_t stream) const {
    return Rng(derive_seed(seed_, 0x726e67u, states_[i].key, stream));
  }

  // ---------------------------------------------------------------------------------------
  // Phase: expand. One logical generator call for every expansion (of every problem).
  // Returns, for each expansion, the ids of its new nodes (empty when it was dropped by a
  // budget cap, or when the generator proposed nothing).
  std::vector<std::vector<NodeId>> expand(std::vector<Expansion> wanted) {
    std::vector<std::vector<NodeId>> out(wanted.size());
    const Budget& b = params_.budget;
    // Budget gates, per problem, in request order.
    std::vector<std::int64_t> cands(states_.size(), 0);
    for (auto& e : wanted) {
      if (!active(e.problem)) {
        e.k = 0;
        continue;
      }
      auto& st = states_[e.problem];
      if (b.max_generator_calls > 0 && st.stats.generator_calls >= b.max_generator_calls) {
        stop(e.problem, StopReason::GeneratorCalls);
        e.k = 0;
        continue;
      }
      if (b.max_nodes > 0) {
        const std::int64_t left =
            b.max_nodes - static_cast<std::int64_t>(st.tree.size()) - cands[e.problem];
        if (left <= 0) {
          stop(e.problem, StopReason::Nodes);
          e.k = 0;
          continue;
        }
        e.k = static_cast<std::int32_t>(std::min<std::int64_t>(e.k, left));
      }
      cands[e.problem] += e.k;
    }
    std::vector<std::int32_t> max_new(states_.size(), params_.max_step_tokens);
    std::vector<char> budget_cut(states_.size(), 0);
    for (std::size_t i = 0; i < states_.size(); ++i) {
      if (cands[i] == 0 || b.max_generated_tokens <= 0) continue;
      const std::int64_t left = b.max_generated_tokens - states_[i].stats.generated_tokens;
      const std::int64_t per = left / cands[i];
      if (per < 1) {
        stop(i, StopReason::GeneratedTokens);
        cands[i] = 0;
        continue;
      }
      const auto cap = static_cast<std::int32_t>(std::min<std::int64_t>(per, INT32_MAX));
      if (max_new[i] == 0 || cap < max_new[i]) {
        max_new[i] = cap;
        budget_cut[i] = 1;
      }
    }
    std::vector<ExpandRequest> reqs;
    std::vector<std::size_t> origin;
    reqs.reserve(wanted.size());
    for (std::size_t w = 0; w < wanted.size(); ++w) {
      const auto& e = wanted[w];
      if (e.k <= 0 || cands[e.problem] == 0) continue;
      auto& st = states_[e.problem];
      ExpandRequest r;
      r.problem_index = e.problem;
      r.problem = &problems_[e.problem];
      r.prompt = st.prompt;
      r.prefix = st.tree.trajectory(e.node);
      r.num_candidates = e.k;
      const auto nth = st.tree[e.node].expansions++;
      r.seed = derive_seed(seed_, st.key, static_cast<std::uint64_t>(e.node),
                           static_cast<std::uint64_t>(nth), e.greedy ? 1u : 0u);
      r.max_new_tokens = max_new[e.problem];
      r.greedy = e.greedy;
      reqs.push_back(std::move(r));
      origin.push_back(w);
    }
    if (reqs.empty()) return out;

    const auto t0 = Clock::now();
    std::vector<std::vector<Step>> steps = call_in_chunks(
        std::span<const ExpandRequest>(reqs), plugin_max_batch(gen_),
        [&](std::span<const ExpandRequest> part) {
          return call_plugin(gen_name_, "generator", [&] { return gen_.expand(part); });
        },
        [&](std::size_t got, std::size_t want) {
          throw PluginError(fmt::format("generator '{}' returned {} results for a batch of {}", gen_name_, got, want));
        });
    const double dt = seconds_since(t0);
    account_call(reqs, dt, /*generator=*/true);

    for (std::size_t r = 0; r < reqs.size(); ++r) {
      const auto& req = reqs[r];
      auto& st = states_[req.problem_index];
      auto& proposed = steps[r];
      ++st.stats.generator_requests;
      if (proposed.empty()) {
        ++st.stats.empty_proposals;
        continue;
      }
      if (proposed.size() > static_cast<std::size_t>(req.num_candidates))
        throw PluginError(fmt::format(
            "generator '{}' returned {} steps for a request of {} candidates", gen_name_,
            proposed.size(), req.num_candidates));
      auto& ids = out[origin[r]];
      ids.reserve(proposed.size());
      const bool detached = wanted[origin[r]].detached;
      for (auto& s : proposed) {
        check_step(s, req);
        const NodeId id = st.tree.add_child(wanted[origin[r]].node, s, detached);
        Node& n = st.tree[id];
        if (!n.terminal && task_.is_terminal(s)) n.terminal = true;
        if (n.depth >= params_.max_depth) n.terminal = true;
        if (n.terminal) {
          if (auto a = task_.extract_answer(st.tree.trajectory(id))) st.tree.set_answer(id, std::move(*a));
        }
        st.stats.generated_tokens += s.num_tokens;
        ++st.stats.generated_steps;
        // A step cut short by its share of the token budget (not by the per-step limit)
        // ends its trajectory; the result then reports the budget as the stop reason.
        if (budget_cut[req.problem_index] && s.finish == FinishReason::Length &&
            s.num_tokens >= req.max_new_tokens)
          st.budget_truncated = true;
        ids.push_back(id);
      }
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------
  // Phase: verify steps. One logical verifier call scoring, for each leaf, every unscored
  // step on its path. Leaves whose cost would exceed the verifier-token cap are not sent:
  // their unscored nodes are marked pruned and the problem stops.
  void verify_steps(std::span<const Ref> leaves) {
    if constexpr (std::is_same_v<V, NoVerifier>) {
      return;
    } else {
      static_assert(StepVerifier<V>, "this search needs a StepVerifier (PRM)");
      std::vector<StepScoreRequest> reqs;
      reqs.reserve(leaves.size());
      std::vector<std::int64_t> spent(states_.size(), 0);
      const std::int64_t cap = params_.budget.max_verifier_tokens;
      for (const Ref& ref : leaves) {
        auto& st = states_[ref.problem];
        const Tree& t = st.tree;
        if (t[ref.node].scored() || t[ref.node].pruned) continue;
        std::int64_t cost = 0;
        NodeId first = ref.node;
        for (NodeId cur = ref.node; cur != Tree::root() && !t[cur].scored(); cur = t[cur].parent) {
          cost += t[cur].num_tokens;
          first = cur;
        }
        if (cap > 0 && st.stats.verifier_tokens + spent[ref.problem] + cost > cap) {
          prune_path(ref);
          stop(ref.problem, StopReason::VerifierTokens);
          continue;
        }
        spent[ref.problem] += cost;
        StepScoreRequest r;
        r.problem_index = ref.problem;
        r.problem = &problems_[ref.problem];
        r.prompt = st.prompt;
        r.trajectory = t.trajectory(ref.node);
        r.first_new = t[first].depth - 1;
        reqs.push_back(std::move(r));
      }
      if (reqs.empty()) return;
      const auto t0 = Clock::now();
      std::vector<std::vector<double>> scores = call_in_chunks(
          std::span<const StepScoreRequest>(reqs), plugin_max_batch(ver_),
          [&](std::span<const StepScoreRequest> part) {
            return call_plugin(ver_name_, "verifier", [&] { return ver_.score_steps(part); });
          },
          [&](std::size_t got, std::size_t want) {
            throw PluginError(fmt::format("verifier '{}' returned {} results for a batch of {}", ver_name_, got, want));
          });
      account_call(reqs, seconds_since(t0), /*generator=*/false);
      for (std::size_t r = 0; r < reqs.size(); ++r) {
        const auto& req = reqs[r];
        auto& st = states_[req.problem_index];
        const std::size_t want = req.trajectory.size() - static_cast<std::size_t>(req.first_new);
        if (scores[r].size() != want)
          throw PluginError(fmt::format(
              "verifier '{}' returned {} scores for a request with {} new steps", ver_name_,
              scores[r].size(), want));
        for (std::size_t k = 0; k < want; ++k) {
          const double s = scores[r][k];
          check_score(s);
          const NodeId id = req.trajectory.node(static_cast<std::size_t>(req.first_new) + k);
          st.tree[id].score = s;
          st.stats.verifier_tokens += st.tree[id].num_tokens;
          ++st.stats.verified_steps;
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Phase: verify outcomes. One logical ORM call; returns one score per leaf (NaN for a
  // leaf not sent because of the verifier-token cap; its path is pruned).
  std::vector<double> verify_outcomes(std::span<const Ref> leaves) {
    static_assert(OutcomeVerifier<V>, "this search needs an OutcomeVerifier (ORM)");
    std::vector<double> out(leaves.size(), std::numeric_limits<double>::quiet_NaN());
    std::vector<OutcomeRequest> reqs;
    std::vector<std::size_t> origin;
    std::vector<std::int64_t> spent(states_.size(), 0);
    const std::int64_t cap = params_.budget.max_verifier_tokens;
    for (std::size_t l = 0; l < leaves.size(); ++l) {
      const Ref& ref = leaves[l];
      auto& st = states_[ref.problem];
      std::int64_t cost = 0;
      for (NodeId cur = ref.node; cur != Tree::root(); cur = st.tree[cur].parent)
        cost += st.tree[cur].num_tokens;
      if (cap > 0 && st.stats.verifier_tokens + spent[ref.problem] + cost > cap) {
        st.tree[ref.node].pruned = true;
        ++st.stats.pruned_nodes;
        stop(ref.problem, StopReason::VerifierTokens);
        continue;
      }
      spent[ref.problem] += cost;
      OutcomeRequest r;
      r.problem_index = ref.problem;
      r.problem = &problems_[ref.problem];
      r.prompt = st.prompt;
      r.trajectory = st.tree.trajectory(ref.node);
      reqs.push_back(std::move(r));
      origin.push_back(l);
    }
    if (reqs.empty()) return out;
    const auto t0 = Clock::now();
    std::vector<double> scores = call_in_chunks(
        std::span<const OutcomeRequest>(reqs), plugin_max_batch(ver_),
        [&](std::span<const OutcomeRequest> part) {
          return call_plugin(ver_name_, "verifier", [&] { return ver_.score_outcomes(part); });
        },
        [&](std::size_t got, std::size_t want) {
          throw PluginError(
              fmt::format("verifier '{}' returned {} outcome scores for a batch of {}", ver_name_, got, want));
        });
    account_call(reqs, seconds_since(t0), /*generator=*/false);
    for (std::size_t r = 0; r < reqs.size(); ++r) {
      check_score(scores[r]);
      out[origin[r]] = scores[r];
      auto& st = states_[reqs[r].problem_index];
      for (std::size_t k = 0; k < reqs[r].trajectory.size(); ++k)
        st.stats.verifier_tokens += reqs[r].trajectory.step(k).num_tokens;
    }
    return out;
  }

  /// Aggregated step score of root -> node under the configured rule.
  double path_score(std::size_t i, NodeId node) const {
    const double s = aggregate_path(states_[i].tree, node, params_.aggregation, params_.custom_aggregation);
    if (!std::isfinite(s))
      throw InvalidArgument(fmt::format("aggregation '{}' returned a non-finite score ({})",
                                        to_string(params_.aggregation), s));
    return s;
  }

  /// Builds candidate i's entry.
  Candidate make_candidate(std::size_t i, NodeId node, double score) const {
    const Tree& t = states_[i].tree;
    Candidate c;
    c.node = node;
    if (auto a = t.answer(node)) {
      c.answer = std::string(*a);
      c.canonical = std::string(task_.canonicalize(*a));
    }
    c.score = score;
    const auto tv = t.trajectory(node);
    c.steps.reserve(tv.size());
    for (std::size_t k = 0; k < tv.size(); ++k) c.steps.emplace_back(tv.text(k));
    return c;
  }

  /// Votes over candidates (in the order given: that order is the tie-break index) with the
  /// configured rule. Returns the index of the candidate behind the winner, or -1.
  int vote_index(std::span<const Candidate> cands, Voting rule, std::size_t top_k) const {
    std::vector<VoteSample> samples;
    samples.reserve(cands.size());
    for (const auto& c : cands) {
      VoteSample s;
      if (c.answer) s.answer = c.canonical;
      s.score = c.score;
      samples.push_back(std::move(s));
    }
    const VoteResult v = vote(samples, rule, top_k);
    if (!v.answer) return -1;
    return static_cast<int>(v.tallies.front().best_index);
  }

  /// Finishes problem i: candidates are ranked (stable, best score first), the chosen
  /// candidate (index into `cands` before ranking, -1 for none) becomes the answer.
  SearchResult make_result(std::size_t i, std::vector<Candidate> cands, int chosen) {
    auto& st = states_[i];
    SearchResult r;
    r.problem = problems_[i];
    NodeId chosen_node = chosen >= 0 ? cands[static_cast<std::size_t>(chosen)].node : kNoNode;
    std::stable_sort(cands.begin(), cands.end(),
                     [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
    for (std::size_t k = 0; k < cands.size(); ++k)
      if (cands[k].node == chosen_node) {
        r.chosen = static_cast<int>(k);
        break;
      }
    if (r.chosen >= 0) r.answer = cands[static_cast<std::size_t>(r.chosen)].answer;
    if constexpr (CheckedTask<T>) {
      if (r.answer) r.correct = task_.check(problems_[i], *r.answer);
      else r.correct = false;
    }
    const bool nothing = r.candidates.empty() && cands.empty();
    r.candidates = std::move(cands);
    r.stop = st.stop == StopReason::Running ? StopReason::Completed : st.stop;
    if (r.stop == StopReason::Completed && st.budget_truncated) r.stop = StopReason::GeneratedTokens;
    if (r.stop == StopReason::Completed && nothing && st.stats.empty_proposals > 0) r.stop = StopReason::Exhausted;
    st.stats.nodes = static_cast<std::int64_t>(st.tree.size());
    r.stats = st.stats;
    return r;
  }

  /// Sorts what expand(wanted) returned (`got`) into each problem's ended (terminal) and open
  /// nodes, in request order, skipping nodes the verifier did not score or pruned.
  void split_children(std::span<const Expansion> wanted, const std::vector<std::vector<NodeId>>& got,
                      std::vector<std::vector<NodeId>>& ended, std::vector<std::vector<NodeId>>& open) const {
    for (std::size_t w = 0; w < wanted.size(); ++w) {
      const std::size_t i = wanted[w].problem;
      const Tree& t = states_[i].tree;
      for (NodeId id : got[w]) {
        if (!t[id].scored() || t[id].pruned) continue;
        (t[id].terminal ? ended[i] : open[i]).push_back(id);
      }
    }
  }

  /// The results of algorithms that end with a set of completed leaves per problem (beam,
  /// particle filtering, REBASE): each problem's leaves, scored by their aggregated path
  /// score, in the order given (the vote's tie-break), voted on with `rule`; timing finished.
  std::vector<SearchResult> vote_results(const std::vector<std::vector<NodeId>>& completed, Voting rule,
                                         std::size_t top_k) {
    std::vector<SearchResult> results;
    results.reserve(completed.size());
    for (std::size_t i = 0; i < completed.size(); ++i) {
      std::vector<Candidate> cands;
      cands.reserve(completed[i].size());
      for (NodeId id : completed[i]) cands.push_back(make_candidate(i, id, path_score(i, id)));
      const int chosen = vote_index(cands, rule, top_k);
      results.push_back(make_result(i, std::move(cands), chosen));
    }
    finish_timing(results);
    return results;
  }

  /// Call once after every make_result: splits the wall time among the problems.
  void finish_timing(std::vector<SearchResult>& results) {
    const double wall = seconds_since(start_);
    double gen = 0.0, ver = 0.0;
    for (const auto& s : states_) {
      gen += s.gen_share;
      ver += s.ver_share;
    }
    const double over = std::max(0.0, wall - gen - ver) / std::max<std::size_t>(1, results.size());
    for (std::size_t i = 0; i < results.size(); ++i) {
      results[i].stats.generator_seconds = states_[i].gen_share;
      results[i].stats.verifier_seconds = states_[i].ver_share;
      results[i].stats.overhead_seconds = over;
      if (params_.keep_tree)
        results[i].tree = std::make_shared<const Tree>(std::move(states_[i].tree));
    }
  }

 private:
  void check_step(const Step& s, const ExpandRequest& req) const {
    if (s.num_tokens < 0)
      throw PluginError(fmt::format("generator '{}' returned a step with num_tokens < 0", gen_name_));
    if (!s.tokens.empty() && static_cast<std::size_t>(s.num_tokens) != s.tokens.size())
      throw PluginError(fmt::format(
          "generator '{}' returned a step with {} token ids but num_tokens = {}", gen_name_,
          s.tokens.size(), s.num_tokens));
    if (req.max_new_tokens > 0 && s.num_tokens > req.max_new_tokens)
      throw PluginError(fmt::format(
          "generator '{}' returned a step of {} tokens, above max_new_tokens = {}", gen_name_,
          s.num_tokens, req.max_new_tokens));
    if (std::isnan(s.logprob) || s.logprob > 1e-9)
      throw PluginError(fmt::format("generator '{}' returned a step with logprob {} (must be <= 0)",
                                    gen_name_, s.logprob));
    const auto n = static_cast<std::size_t>(s.num_tokens);
    if (!s.token_logprobs.empty() && s.token_logprobs.size() != n)
      throw PluginError(fmt::format("generator '{}' returned a step with {} token_logprobs but num_tokens = {}",
                                    gen_name_, s.token_logprobs.size(), s.num_tokens));
    if (!s.token_entropies.empty() && s.token_entropies.size() != n)
      throw PluginError(fmt::format("generator '{}' returned a step with {} token_entropies but num_tokens = {}",
                                    gen_name_, s.token_entropies.size(), s.num_tokens));
  }
  void check_score(double s) const {
    if (!std::isfinite(s))
      throw PluginError(fmt::format("verifier '{}' returned a non-finite score ({})", ver_name_, s));
    if (s < 0.0 || s > 1.0)
      throw PluginError(fmt::format("verifier '{}' returned score {} outside [0,1]", ver_name_, s));
  }
  void prune_path(const Ref& ref) {
    auto& st = states_[ref.problem];
    for (NodeId cur = ref.node; cur != Tree::root() && !st.tree[cur].scored() && !st.tree[cur].pruned;
         cur = st.tree[cur].parent) {
      st.tree[cur].pruned = true;
      ++st.stats.pruned_nodes;
    }
  }
  template <class R>
  void account_call(const std::vector<R>& reqs, double dt, bool generator) {
    std::vector<std::size_t> per(states_.size(), 0);
    for (const auto& r : reqs) ++per[r.problem_index];
    const double n = static_cast<double>(reqs.size());
    for (std::size_t i = 0; i < states_.size(); ++i) {
      if (!per[i]) continue;
      auto& st = states_[i];
      const double share = dt * static_cast<double>(per[i]) / n;
      if (generator) {
        ++st.stats.generator_calls;
        st.stats.generator_batches.add(reqs.size());
        st.gen_share += share;
      } else {
        ++st.stats.verifier_calls;
        st.stats.verifier_batches.add(reqs.size());
        st.ver_share += share;
      }
    }
  }

  std::span<const Problem> problems_;
  const T& task_;
  G& gen_;
  V& ver_;
  CommonParams params_;
  std::uint64_t seed_;
  std::string gen_name_, ver_name_;
  Clock::time_point start_;
  std::vector<ProblemState> states_;
};

}  // namespace qstar::detail
