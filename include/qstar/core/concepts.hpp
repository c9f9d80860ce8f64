// The plug-in concepts: Generator, StepVerifier (PRM), OutcomeVerifier (ORM) and Task.
//
// Plug-ins see batches, never single nodes: a search makes one call per iteration that
// covers every frontier node of every problem searched together.
//
// Generator G — required expression:
//   g.expand(std::span<const ExpandRequest>) -> std::vector<std::vector<Step>>
//     one inner vector per request, holding 1..num_candidates proposed next steps (an empty
//     inner vector means "no proposal"; the search drops that request and counts it in
//     Stats::empty_proposals). Each step's num_tokens must be <= request.max_new_tokens;
//     its token_logprobs and token_entropies, when not empty, hold num_tokens values each.
//     The result must depend only on each request (its prefix and its seed), never on the
//     other requests of the batch: that is what makes searches batch-invariant.
// StepVerifier V — required expression:
//   v.score_steps(std::span<const StepScoreRequest>) -> std::vector<std::vector<double>>
//     one inner vector per request with trajectory.size() - first_new scores in [0,1]:
//     the score of each new step given its prefix (a process reward).
// OutcomeVerifier V — required expression:
//   v.score_outcomes(std::span<const OutcomeRequest>) -> std::vector<double>
//     one score in [0,1] per complete trajectory.
// Task T — required expressions:
//   t.format(const Problem&) -> convertible to std::string  (the prompt)
//   t.is_terminal(const Step&) -> bool          (the step ends the solution)
//   t.extract_answer(TrajectoryView) -> std::optional<std::string>
//   t.canonicalize(std::string_view) -> convertible to std::string  (voting key)
// CheckedTask T: a Task with the optional exact checker
//   t.check(const Problem&, std::string_view answer) -> bool
//
// Optional members that every plug-in may have:
//   name() -> convertible to std::string       (used in error messages; default "generator"/
//                                                "verifier")
//   max_batch_size() -> std::size_t            (the core splits larger calls; 0 = unlimited)
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "qstar/core/tree.hpp"
#include "qstar/core/types.hpp"

namespace qstar {

/// A request to propose next steps after a trajectory prefix.
struct ExpandRequest {
  std::size_t problem_index = 0;      ///< index of the problem in the searched span
  const Problem* problem = nullptr;   ///< the problem
  std::string_view prompt;            ///< Task::format(problem), computed once per problem
  TrajectoryView prefix;              ///< root -> node whose continuation is wanted
  std::int32_t num_candidates = 1;    ///< how many next steps to propose (>= 1)
  std::uint64_t seed = 0;             ///< per-request seed; same seed, same proposals
  std::int32_t max_new_tokens = 0;    ///< hard cap on each step's tokens (0 = no cap)
  bool greedy = false;                ///< temperature 0 (lookahead and greedy rollouts)
};

/// A request to score the steps [first_new, size) of a trajectory.
struct StepScoreRequest {
  std::size_t problem_index = 0;
  const Problem* problem = nullptr;
  std::string_view prompt;
  TrajectoryView trajectory;
  std::int32_t first_new = 0;  ///< index of the first step to score
};

/// A request to score a complete trajectory.
struct OutcomeRequest {
  std::size_t problem_index = 0;
  const Problem* problem = nullptr;
  std::string_view prompt;
  TrajectoryView trajectory;
};

template <class G>
concept Generator = requires(G& g, std::span<const ExpandRequest> batch) {
  { g.expand(batch) } -> std::same_as<std::vector<std::vector<Step>>>;
};

template <class V>
concept StepVerifier = requires(V& v, std::span<const StepScoreRequest> batch) {
  { v.score_steps(batch) } -> std::same_as<std::vector<std::vector<double>>>;
};

template <class V>
concept OutcomeVerifier = requires(V& v, std::span<const OutcomeRequest> batch) {
  { v.score_outcomes(batch) } -> std::same_as<std::vector<double>>;
};

template <class T>
concept Task = requires(const T& t, const Problem& p, const Step& s, const TrajectoryView& tv,
                        std::string_view a) {
  { t.format(p) } -> std::convertible_to<std::string>;
  { t.is_terminal(s) } -> std::same_as<bool>;
  { t.extract_answer(tv) } -> std::same_as<std::optional<std::string>>;
  { t.canonicalize(a) } -> std::convertible_to<std::string>;
};

template <class T>
concept CheckedTask = Task<T> && requires(const T& t, const Problem& p, std::string_view a) {
  { t.check(p, a) } -> std::same_as<bool>;
};

/// The "no verifier" plug-in: searches that can run without scores (best-of-N with
/// majority voting) accept it, and make no verifier calls.
struct NoVerifier {};

/// Name of a plug-in for messages: its name() if it has one, else `fallback`.
template <class P>
std::string plugin_name(const P& p, const char* fallback) {
  if constexpr (requires { { p.name() } -> std::convertible_to<std::string>; }) {
    return std::string(p.name());
  } else {
    return fallback;
  }
}

/// Calls `call(part)` on consecutive chunks of at most `max_batch` requests of `batch` (0: the
/// whole batch in one call) and joins the results in request order. Each call must return one
/// result per request of its chunk; otherwise `on_mismatch(returned, requested)` is called
/// (it should throw). The one batch splitter: the engine's phases, adapters/batch_split.hpp
/// and the Python bindings all call plug-ins through it.
template <class R, class F, class OnMismatch>
auto call_in_chunks(std::span<const R> batch, std::size_t max_batch, F&& call, OnMismatch&& on_mismatch)
    -> std::invoke_result_t<F&, std::span<const R>> {
  using Out = std::invoke_result_t<F&, std::span<const R>>;
  if (max_batch == 0 || batch.size() <= max_batch) {
    Out got = call(batch);
    if (got.size() != batch.size()) on_mismatch(got.size(), batch.size());
    return got;
  }
  Out out;
  out.reserve(batch.size());
  for (std::size_t lo = 0; lo < batch.size(); lo += max_batch) {
    const auto part = batch.subspan(lo, std::min(max_batch, batch.size() - lo));
    Out got = call(part);
    if (got.size() != part.size()) on_mismatch(got.size(), part.size());
    for (auto& x : got) out.push_back(std::move(x));
  }
  return out;
}

/// The plug-in's maximum batch size, 0 when unlimited or not declared.
template <class P>
std::size_t plugin_max_batch(const P& p) {
  if constexpr (requires { { p.max_batch_size() } -> std::convertible_to<std::size_t>; }) {
    return static_cast<std::size_t>(p.max_batch_size());
  } else {
    return 0;
  }
}

}  // namespace qstar
