// Particle filtering over steps (Puri, Sudalairaj, Xu, Xu & Srivastava 2025, "A
// Probabilistic Inference Approach to Inference-Time Scaling of LLMs using Particle-Based
// Monte Carlo Methods"; its_hub's ParticleFiltering; systematic resampling: Kitagawa 1996).
//
// N particles per problem, each a partial trajectory. Each iteration advances every live
// particle by ONE step: ONE generator call for the particles of every problem (particles
// sharing a tip, as after resampling, make one request for that many candidates) and ONE
// verifier call scoring the new steps. A particle's weight is softmax(score / T) over the
// live particles, with score the aggregated step score of its trajectory (the PRM as the
// approximate likelihood of "this prefix leads to a correct answer"). When the effective
// sample size of the live weights drops below resample_threshold times their number, the
// live particles are replaced by a systematic resample of themselves (one uniform per
// resampling, from the problem's own random stream). Cost per iteration: one step and one
// score per live particle (at most N).
//
// Conventions (stated because peers differ):
// - The weight is recomputed from the trajectory's aggregated score each iteration, not
//   accumulated (Puri et al.'s Algorithm 1, which resamples every iteration:
//   resample_threshold = 1); with a threshold below 1, iterations without resampling keep
//   the particles as they are.
// - A particle whose step ends its trajectory (final answer, or max_depth) leaves the
//   population and is kept as a completion: resampling acts on the live particles only,
//   so a finished particle is never lost or duplicated, and the live population shrinks by
//   one. its_hub resamples over all particles, finished ones included.
// - A particle whose expansion returned no step (the generator proposed fewer than asked)
//   or whose step could not be scored (verifier-token cap) dies.
// - The search ends when no live particle is left; the answer is voted (CommonParams::voting,
//   weighted by default: the sum of the completions' aggregated scores per answer) over
//   the completions.
#pragma once

#include <array>
#include <cmath>
#include <span>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "qstar/search/detail/engine.hpp"
#include "qstar/search/weights.hpp"

namespace qstar {

struct ParticleFilterParams : CommonParams {
  /// Particles N per problem: the root proposes N first steps; at most N completions.
  int num_particles = 16;
  /// Softmax temperature T of the particle weights exp(score / T), score the aggregated
  /// step score in [0, 1]: lower is greedier.
  double temperature = 0.2;
  /// Resample when the effective sample size of the live weights is below this fraction
  /// of the live particles (1: every iteration unless the weights are exactly equal, as
  /// Puri et al.; 0: never, which is N independent chains).
  double resample_threshold = 1.0;

  void validate() const {
    CommonParams::validate();
    if (num_particles < 1) throw InvalidArgument("num_particles must be >= 1");
    if (!(temperature > 0.0) || !std::isfinite(temperature))
      throw InvalidArgument("temperature must be > 0 and finite");
    if (!(resample_threshold >= 0.0 && resample_threshold <= 1.0))
      throw InvalidArgument("resample_threshold must be in [0, 1]");
  }
};

namespace detail {

/// The live particles' tips grouped by node in first-appearance order: one expansion per
/// distinct tip, with as many candidates as particles on it.
inline std::vector<std::pair<NodeId, int>> group_tips(std::span<const NodeId> tips) {
  std::vector<std::pair<NodeId, int>> groups;
  std::unordered_map<NodeId, std::size_t> at;
  for (NodeId t : tips) {
    const auto [it, fresh] = at.emplace(t, groups.size());
    if (fresh) groups.emplace_back(t, 0);
    ++groups[it->second].second;
  }
  return groups;
}

}  // namespace detail

template <Task T, Generator G, StepVerifier V>
std::vector<SearchResult> particle_filter(std::span<const Problem> problems, const T& task, G& gen, V& ver,
                                          const ParticleFilterParams& params, std::uint64_t seed) {
  params.validate();
  detail::Engine<T, G, V> eng(problems, task, gen, ver, params, seed);
  const std::size_t P = problems.size();
  // live[i]: the tips of problem i's live particles (a node appears once per particle on it).
  std::vector<std::vector<NodeId>> live(P);
  std::vector<std::vector<NodeId>> completed(P);
  std::vector<Rng> rng;
  rng.reserve(P);
  for (std::size_t i = 0; i < P; ++i) {
    live[i].assign(static_cast<std::size_t>(params.num_particles), Tree::root());
    rng.push_back(eng.problem_rng(i, 0x7066u));  // "pf"
  }
  std::vector<detail::Expansion> wanted;

  while (eng.any_active()) {
    eng.begin_iteration();
    wanted.clear();
    for (std::size_t i = 0; i < P; ++i) {
      if (!eng.active(i)) continue;
      if (live[i].empty()) {
        eng.stop(i, completed[i].empty() ? StopReason::Exhausted : StopReason::Completed);
        continue;
      }
      for (const auto& [tip, count] : detail::group_tips(live[i])) wanted.push_back({i, tip, count, false, false});
    }
    if (wanted.empty()) break;
    const auto got = eng.expand(wanted);
    std::vector<detail::Ref> fresh;
    for (std::size_t w = 0; w < wanted.size(); ++w)
      for (NodeId id : got[w]) fresh.push_back({wanted[w].problem, id});
    eng.verify_steps(fresh);

    // Advanced particles per problem, in request order; finished ones leave.
    std::vector<std::vector<NodeId>> next(P);
    eng.split_children(wanted, got, completed, next);
    for (std::size_t i = 0; i < P; ++i) {
      if (!eng.active(i) && next[i].empty()) {
        live[i].clear();
        continue;
      }
      if (!next[i].empty()) {
        std::vector<double> scores;
        scores.reserve(next[i].size());
        for (NodeId id : next[i]) scores.push_back(eng.path_score(i, id));
        const std::vector<double> w = softmax_weights(scores, params.temperature);
        const double m = static_cast<double>(next[i].size());
        if (effective_sample_size(w) < params.resample_threshold * m) {
          const auto ancestors = systematic_resample(w, next[i].size(), rng[i].uniform());
          std::vector<NodeId> kept;
          kept.reserve(ancestors.size());
          for (std::size_t a : ancestors) kept.push_back(next[i][a]);
          next[i] = std::move(kept);
        }
      }
      live[i] = std::move(next[i]);
      if (live[i].empty()) eng.stop(i, completed[i].empty() ? StopReason::Exhausted : StopReason::Completed);
    }
  }

  return eng.vote_results(completed, params.voting, static_cast<std::size_t>(params.top_k));
}

template <>
struct AlgorithmTraits<ParticleFilterParams> {
  static constexpr std::string_view name = "particle-filter";
  static constexpr std::string_view budget_field = "num_particles";
  static constexpr bool needs_step_verifier = true;
  static constexpr std::array<FieldFlag, 2> flags{
      {{"score-temperature", "temperature"}, {"resample-threshold", "resample_threshold"}}};
  template <class P, class F>
  static void own_fields(P& p, F&& f) {
    f("num_particles", p.num_particles);
    f("temperature", p.temperature);
    f("resample_threshold", p.resample_threshold);
  }
  static void set_budget(ParticleFilterParams& p, int n) { p.num_particles = n; }
  template <class... A>
  static std::vector<SearchResult> run(A&&... a) {
    return particle_filter(std::forward<A>(a)...);
  }
};

}  // namespace qstar
