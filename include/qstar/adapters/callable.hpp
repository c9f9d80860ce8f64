// Plug-ins from callables: wrap a lambda taking the whole batch into a Generator /
// StepVerifier / OutcomeVerifier, with a name and an optional max batch size.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "qstar/core/concepts.hpp"

namespace qstar {

template <class F>
struct CallableGenerator {
  F fn;                        ///< (std::span<const ExpandRequest>) -> vector<vector<Step>>
  std::string label = "callable-generator";  ///< name in error messages
  std::size_t max_batch = 0;   ///< 0: unlimited
  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> b) { return fn(b); }
  const std::string& name() const { return label; }
  std::size_t max_batch_size() const { return max_batch; }
};

template <class F>
struct CallableStepVerifier {
  F fn;                        ///< (std::span<const StepScoreRequest>) -> vector<vector<double>>
  std::string label = "callable-verifier";
  std::size_t max_batch = 0;
  std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest> b) { return fn(b); }
  const std::string& name() const { return label; }
  std::size_t max_batch_size() const { return max_batch; }
};

template <class F>
struct CallableOutcomeVerifier {
  F fn;                        ///< (std::span<const OutcomeRequest>) -> vector<double>
  std::string label = "callable-outcome-verifier";
  std::size_t max_batch = 0;
  std::vector<double> score_outcomes(std::span<const OutcomeRequest> b) { return fn(b); }
  const std::string& name() const { return label; }
  std::size_t max_batch_size() const { return max_batch; }
};

template <class F>
CallableGenerator<F> make_generator(F fn, std::string name = "callable-generator", std::size_t max_batch = 0) {
  return {std::move(fn), std::move(name), max_batch};
}
template <class F>
CallableStepVerifier<F> make_step_verifier(F fn, std::string name = "callable-verifier", std::size_t max_batch = 0) {
  return {std::move(fn), std::move(name), max_batch};
}
template <class F>
CallableOutcomeVerifier<F> make_outcome_verifier(F fn, std::string name = "callable-outcome-verifier",
                                                 std::size_t max_batch = 0) {
  return {std::move(fn), std::move(name), max_batch};
}

}  // namespace qstar
