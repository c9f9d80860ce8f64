// Running a search from a boundary (the CLI, the Python bindings): the verifier resolution
// between "no verifier", "outcome scores only (ORM)" and "step scores (PRM)", written once.
//
//   VerifierSet v;                      // what the user chose: a PRM and/or an ORM, or neither
//   v.step.emplace(prm); v.outcome.emplace(prm); v.label = "prm:models/prm";
//   auto results = qstar::run_search(problems, task, gen, &v, params, seed);  // nullptr: none
//
// The rules: best-of-n runs with anything (scoring "none" ignores the verifier, "auto" ranks
// by the PRM when there is one, else by the ORM, else majority); every other algorithm
// needs step scores, and check_verifier says so before anything runs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "qstar/core/any.hpp"
#include "qstar/error.hpp"
#include "qstar/search/search.hpp"

namespace qstar {

/// The verifier a boundary hands to a search: step scores (a PRM) and/or outcome scores
/// (an ORM); a PRM usually fills both. A missing half throws InvalidArgument naming `label`
/// when a search asks for it.
struct VerifierSet {
  std::optional<AnyStepVerifier> step;
  std::optional<AnyOutcomeVerifier> outcome;
  /// Names the verifier in messages and reports ("oracle", "prm:DIR,orm=oracle").
  std::string label = "verifier";

  std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest> b) {
    if (!step) throw InvalidArgument(fmt::format("verifier '{}' has no step scores (it is not a PRM)", label));
    return step->score_steps(b);
  }
  std::vector<double> score_outcomes(std::span<const OutcomeRequest> b) {
    if (!outcome) throw InvalidArgument(fmt::format("verifier '{}' has no outcome scores (it is not an ORM)", label));
    return outcome->score_outcomes(b);
  }
  std::string name() const { return label; }
  /// The smaller declared limit of the two halves (0: unlimited).
  std::size_t max_batch_size() const {
    const std::size_t a = step ? step->max_batch_size() : 0, b = outcome ? outcome->max_batch_size() : 0;
    if (a == 0) return b;
    if (b == 0) return a;
    return std::min(a, b);
  }
};

/// Throws InvalidArgument (starting "verifier: ") when `params`' algorithm cannot run with
/// `ver` (nullptr or an empty set: no verifier): every algorithm but best-of-n needs step
/// scores. The message contains "needs a verifier".
inline void check_verifier(const SearchParams& params, const VerifierSet* ver) {
  if (!needs_step_verifier(params) || (ver && ver->step)) return;
  if (ver && ver->outcome)
    throw InvalidArgument(fmt::format("verifier: algo '{}' needs a verifier with step scores (a PRM); '{}' has only "
                                      "outcome scores",
                                      algorithm_name(params), ver->label));
  throw InvalidArgument(fmt::format("verifier: algo '{}' needs a verifier (a PRM); only best-of-n runs without one",
                                    algorithm_name(params)));
}

/// qstar::search with the verifier resolved: `ver` nullptr (or empty) runs without a
/// verifier; best-of-n with scoring "none" ignores it; best-of-n with scoring "auto" and
/// only outcome scores ranks by the ORM. `task` is any Task (a concrete one, AnyTask, or a
/// binding's wrapper).
template <Task T>
std::vector<SearchResult> run_search(std::span<const Problem> problems, const T& task, AnyGenerator& gen,
                                     VerifierSet* ver, const SearchParams& params, std::uint64_t seed) {
  check_verifier(params, ver);
  if (ver && !ver->step && !ver->outcome) ver = nullptr;
  NoVerifier none;
  if (!ver) return search(problems, task, gen, none, params, seed);
  if (const auto* bon = std::get_if<BestOfNParams>(&params)) {
    if (bon->scoring == Scoring::None) return search(problems, task, gen, none, params, seed);
    if (bon->scoring == Scoring::Auto && !ver->step) {
      BestOfNParams p = *bon;
      p.scoring = Scoring::Orm;
      return best_of_n(problems, task, gen, *ver, p, seed);
    }
  }
  return search(problems, task, gen, *ver, params, seed);
}

}  // namespace qstar
