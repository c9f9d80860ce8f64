// Math-Shepherd automatic process labels (Wang et al. 2024, "Math-Shepherd: Verify and
// Reinforce LLMs Step-by-step without Human Annotations"), over any qstar Generator and a
// CheckedTask. Header-only, no LibTorch.
//
// For every step i of every given solution, K rollouts continue the prefix (steps 0..i)
// with the generator until a terminal step (Task::is_terminal) or the depth limit; the soft
// label is the fraction of the K rollouts whose answer the task's exact checker accepts,
// the hard label whether any does. A step that is itself terminal is labelled by checking
// its own answer (soft = hard = correct; no rollouts are run for it).
//
// Batching: every generator call covers every rollout that is still running, of every
// step of every solution: the first call asks each unfinished prefix for K candidates (one
// request, num_candidates = K), each later call asks each running rollout for its next step
// (num_candidates = 1). So the number of generator calls is about the rollout depth, not
// the number of prefixes. Calls larger than LabelParams::max_batch (or the generator's
// max_batch_size()) are split. Seeds derive from (seed, solution, step, rollout, depth):
// labels do not depend on the batch size.
//
// A rollout that gets no proposal, or reaches the depth limit without a terminal step,
// counts as failed (the denominator stays K).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "qstar/core/concepts.hpp"
#include "qstar/core/rng.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/core/types.hpp"
#include "qstar/error.hpp"

namespace qstar::train {

/// Where label_steps is, passed to LabelParams::progress after every generator call.
struct LabelProgress {
  int wave = 0;                     ///< 0: the prefixes' first call; w: rollouts' step w+1
  std::size_t wave_done = 0;        ///< requests of this wave sent so far
  std::size_t wave_total = 0;       ///< requests in this wave
  std::int64_t generator_calls = 0; ///< expand() calls so far
  std::int64_t generated_steps = 0; ///< steps returned so far
};

/// Parameters of label_steps. validate() throws InvalidArgument naming the field.
struct LabelParams {
  /// K: rollouts per step (>= 1).
  int rollouts = 8;
  /// A rollout stops after this many steps in total (prefix included; >= 1).
  int max_depth = 6;
  /// ExpandRequest::max_new_tokens of every request (0 = no cap; >= 0).
  std::int32_t max_step_tokens = 64;
  /// Requests per generator call at most (0 = the generator's max_batch_size(), or all).
  std::size_t max_batch = 0;
  /// Called after every generator call (optional; a long labelling run's progress line).
  std::function<void(const LabelProgress&)> progress;

  void validate() const {
    if (rollouts < 1)
      throw InvalidArgument(fmt::format("LabelParams.rollouts: must be >= 1, got {}", rollouts));
    if (max_depth < 1)
      throw InvalidArgument(fmt::format("LabelParams.max_depth: must be >= 1, got {}", max_depth));
    if (max_step_tokens < 0)
      throw InvalidArgument(
          fmt::format("LabelParams.max_step_tokens: must be >= 0, got {}", max_step_tokens));
  }
};

/// A solution to label: the index of its problem and its steps.
struct Solution {
  std::size_t problem = 0;  ///< index into the problems span
  std::vector<Step> steps;  ///< the sampled steps (a step's tokens may be empty)
  bool finished = false;    ///< set by sample_solutions: it ended with a terminal step
  bool correct = false;     ///< set by sample_solutions: the task's checker accepts its answer
};

/// The label of one step.
struct StepLabel {
  double soft = 0.0;  ///< fraction of rollouts that reached a correct answer
  bool hard = false;  ///< at least one did
  int correct = 0;    ///< how many did
  int rollouts = 0;   ///< K (0 for a terminal step, labelled by its own answer)
};

/// The labels of every solution (labels[s][i]: step i of solution s) and the work done.
struct LabelResult {
  std::vector<std::vector<StepLabel>> labels;
  std::int64_t generator_calls = 0;    ///< expand() calls (after splitting)
  std::int64_t generator_requests = 0; ///< requests over those calls
  std::int64_t generated_steps = 0;    ///< steps returned
  std::int64_t generated_tokens = 0;   ///< their num_tokens
};

/// Math-Shepherd labels for `solutions` (see the header comment). InvalidArgument for a
/// solution whose problem index is out of range or bad params; PluginError when the
/// generator returns the wrong number of results.
template <Generator G, CheckedTask T>
LabelResult label_steps(std::span<const Problem> problems, std::span<const Solution> solutions,
                        const T& task, G& gen, const LabelParams& params, std::uint64_t seed) {
  params.validate();
  LabelResult out;
  out.labels.resize(solutions.size());
  std::vector<std::string> prompts(problems.size());
  std::vector<bool> have_prompt(problems.size(), false);
  for (std::size_t s = 0; s < solutions.size(); ++s) {
    const std::size_t p = solutions[s].problem;
    if (p >= problems.size())
      throw InvalidArgument(fmt::format("label_steps: solution {}: problem index {} out of [0, {})",
                                        s, p, problems.size()));
    if (!have_prompt[p]) {
      prompts[p] = std::string(task.format(problems[p]));
      have_prompt[p] = true;
    }
    out.labels[s].resize(solutions[s].steps.size());
  }

  Tree tree;
  auto is_correct = [&](NodeId node, std::size_t problem) {
    const auto answer = task.extract_answer(tree.trajectory(node));
    return answer.has_value() && task.check(problems[problem], *answer);
  };

  // A running rollout, or (before the first call) a prefix waiting for its K candidates.
  struct Job {
    std::size_t solution, step;  // whose label it feeds
    NodeId node;                 // the trajectory so far
    int depth;                   // steps so far
    int rollout;                 // -1: the prefix's first call (num_candidates = K)
  };
  std::vector<Job> jobs;
  for (std::size_t s = 0; s < solutions.size(); ++s) {
    NodeId node = Tree::root();
    const auto& steps = solutions[s].steps;
    for (std::size_t i = 0; i < steps.size(); ++i) {
      node = tree.add_child(node, steps[i]);
      StepLabel& label = out.labels[s][i];
      if (task.is_terminal(steps[i])) {
        const bool ok = is_correct(node, solutions[s].problem);
        label = {ok ? 1.0 : 0.0, ok, ok ? 1 : 0, 0};
      } else {
        label.rollouts = params.rollouts;
        if (static_cast<int>(i) + 1 < params.max_depth)
          jobs.push_back({s, i, node, static_cast<int>(i) + 1, -1});
      }
    }
  }

  const std::size_t cap = params.max_batch > 0 ? params.max_batch : plugin_max_batch(gen);
  std::vector<ExpandRequest> requests;
  int wave = 0;
  while (!jobs.empty()) {
    std::vector<Job> next;
    for (std::size_t lo = 0; lo < jobs.size();) {
      const std::size_t hi = cap > 0 ? std::min(jobs.size(), lo + cap) : jobs.size();
      requests.clear();
      for (std::size_t j = lo; j < hi; ++j) {
        const Job& job = jobs[j];
        const std::size_t p = solutions[job.solution].problem;
        ExpandRequest r;
        r.problem_index = p;
        r.problem = &problems[p];
        r.prompt = prompts[p];
        r.prefix = tree.trajectory(job.node);
        r.num_candidates = job.rollout < 0 ? params.rollouts : 1;
        r.seed = derive_seed(seed, static_cast<std::uint64_t>(job.solution),
                             static_cast<std::uint64_t>(job.step),
                             static_cast<std::uint64_t>(job.rollout + 1),
                             static_cast<std::uint64_t>(job.depth));
        r.max_new_tokens = params.max_step_tokens;
        requests.push_back(std::move(r));
      }
      auto results = gen.expand(std::span<const ExpandRequest>(requests));
      ++out.generator_calls;
      out.generator_requests += static_cast<std::int64_t>(requests.size());
      if (results.size() != requests.size())
        throw PluginError(fmt::format("{}: expand returned {} results for {} requests",
                                      plugin_name(gen, "generator"), results.size(),
                                      requests.size()));
      for (std::size_t j = lo; j < hi; ++j) {
        const Job& job = jobs[j];
        auto& steps = results[j - lo];
        const std::size_t limit = static_cast<std::size_t>(requests[j - lo].num_candidates);
        if (steps.size() > limit) steps.resize(limit);
        for (std::size_t c = 0; c < steps.size(); ++c) {
          const Step& st = steps[c];
          ++out.generated_steps;
          out.generated_tokens += st.num_tokens;
          const NodeId child = tree.add_child(job.node, st, /*detached=*/true);
          const int rollout = job.rollout < 0 ? static_cast<int>(c) : job.rollout;
          if (task.is_terminal(st)) {
            if (is_correct(child, solutions[job.solution].problem)) {
              StepLabel& label = out.labels[job.solution][job.step];
              ++label.correct;
              label.hard = true;
            }
          } else if (job.depth + 1 < params.max_depth) {
            next.push_back({job.solution, job.step, child, job.depth + 1, rollout});
          }
        }
      }
      lo = hi;
      if (params.progress)
        params.progress({wave, hi, jobs.size(), out.generator_calls, out.generated_steps});
    }
    jobs = std::move(next);
    ++wave;
  }
  for (auto& labels : out.labels)
    for (auto& l : labels)
      if (l.rollouts > 0) l.soft = static_cast<double>(l.correct) / l.rollouts;
  return out;
}

/// Parameters of sample_solutions. validate() throws InvalidArgument naming the field.
struct SampleParams {
  /// Solutions per problem (>= 1).
  int per_problem = 1;
  /// Steps per solution at most (>= 1).
  int max_depth = 6;
  /// ExpandRequest::max_new_tokens (0 = no cap; >= 0).
  std::int32_t max_step_tokens = 64;
  /// Greedy decoding (ExpandRequest::greedy) instead of sampling.
  bool greedy = false;
  /// Requests per generator call at most (0 = the generator's max_batch_size(), or all).
  std::size_t max_batch = 0;

  void validate() const {
    if (per_problem < 1)
      throw InvalidArgument(fmt::format("SampleParams.per_problem: must be >= 1, got {}", per_problem));
    if (max_depth < 1)
      throw InvalidArgument(fmt::format("SampleParams.max_depth: must be >= 1, got {}", max_depth));
    if (max_step_tokens < 0)
      throw InvalidArgument(
          fmt::format("SampleParams.max_step_tokens: must be >= 0, got {}", max_step_tokens));
  }
};

/// Samples per_problem solutions of every problem step by step: each generator call covers
/// every unfinished solution of every problem (one request with num_candidates = 1 each,
/// seeds from (seed, problem, sample, depth)). Solutions are returned problem by problem,
/// with `finished` and `correct` set (the task's exact checker on the extracted answer). A
/// solution whose request gets no proposal stops there unfinished.
template <Generator G, CheckedTask T>
std::vector<Solution> sample_solutions(std::span<const Problem> problems, const T& task, G& gen,
                                       const SampleParams& params, std::uint64_t seed) {
  params.validate();
  std::vector<std::string> prompts;
  prompts.reserve(problems.size());
  for (const auto& p : problems) prompts.emplace_back(task.format(p));
  std::vector<Solution> out;
  out.reserve(problems.size() * static_cast<std::size_t>(params.per_problem));
  Tree tree;
  std::vector<NodeId> leaf;
  std::vector<std::size_t> active;
  for (std::size_t p = 0; p < problems.size(); ++p)
    for (int k = 0; k < params.per_problem; ++k) {
      active.push_back(out.size());
      out.push_back({p, {}, false, false});
      leaf.push_back(Tree::root());
    }
  const std::size_t cap = params.max_batch > 0 ? params.max_batch : plugin_max_batch(gen);
  std::vector<ExpandRequest> requests;
  for (int depth = 0; depth < params.max_depth && !active.empty(); ++depth) {
    std::vector<std::size_t> next;
    for (std::size_t lo = 0; lo < active.size();) {
      const std::size_t hi = cap > 0 ? std::min(active.size(), lo + cap) : active.size();
      requests.clear();
      for (std::size_t j = lo; j < hi; ++j) {
        const std::size_t s = active[j];
        const std::size_t p = out[s].problem;
        ExpandRequest r;
        r.problem_index = p;
        r.problem = &problems[p];
        r.prompt = prompts[p];
        r.prefix = tree.trajectory(leaf[s]);
        r.num_candidates = 1;
        r.seed = derive_seed(seed, static_cast<std::uint64_t>(p),
                             static_cast<std::uint64_t>(s), static_cast<std::uint64_t>(depth));
        r.max_new_tokens = params.max_step_tokens;
        r.greedy = params.greedy;
        requests.push_back(std::move(r));
      }
      auto results = gen.expand(std::span<const ExpandRequest>(requests));
      if (results.size() != requests.size())
        throw PluginError(fmt::format("{}: expand returned {} results for {} requests",
                                      plugin_name(gen, "generator"), results.size(),
                                      requests.size()));
      for (std::size_t j = lo; j < hi; ++j) {
        const std::size_t s = active[j];
        if (results[j - lo].empty()) continue;
        Step st = std::move(results[j - lo].front());
        leaf[s] = tree.add_child(leaf[s], st);
        const bool terminal = task.is_terminal(st);
        out[s].steps.push_back(std::move(st));
        if (terminal) {
          out[s].finished = true;
          const auto answer = task.extract_answer(tree.trajectory(leaf[s]));
          out[s].correct = answer.has_value() && task.check(problems[out[s].problem], *answer);
        } else {
          next.push_back(s);
        }
      }
      lo = hi;
    }
    active = std::move(next);
  }
  return out;
}

}  // namespace qstar::train
