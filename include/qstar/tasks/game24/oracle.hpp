// Game of 24: the oracle step and outcome verifiers (exact; the upper bound of any PRM/ORM).
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <limits>
#include <numeric>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "qstar/core/concepts.hpp"
#include "qstar/core/rng.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/core/types.hpp"
#include "qstar/error.hpp"
#include "qstar/tasks/game24/task.hpp"

namespace qstar::game24 {

// ---- oracle verifiers ---------------------------------------------------------------------

/// The exact process reward: step i scores 1 when steps 0..i are all legal (replayed from
/// the puzzle) and the numbers left can still make 24; an "Answer:" step scores 1 when every
/// earlier step was legal and the answer is correct (check_answer). Everything else, and any
/// step after an answer, scores 0. This is the upper bound for any learned PRM.
class OracleStepVerifier {
 public:
  explicit OracleStepVerifier(std::size_t max_batch_size = 0) : max_batch_(max_batch_size) {}
  std::string name() const { return "game24-oracle"; }
  std::size_t max_batch_size() const noexcept { return max_batch_; }

  std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest> batch) const {
    std::vector<std::vector<double>> out;
    out.reserve(batch.size());
    for (const auto& request : batch) out.push_back(score(request));
    return out;
  }

  /// The scores of steps [first_new, size) of one request.
  std::vector<double> score(const StepScoreRequest& request) const {
    if (request.problem == nullptr) throw InvalidArgument("StepScoreRequest.problem: null");
    const TrajectoryView& t = request.trajectory;
    if (request.first_new < 0 || static_cast<std::size_t>(request.first_new) > t.size())
      throw InvalidArgument(fmt::format("StepScoreRequest.first_new: {} is not in [0, {}]",
                                        request.first_new, t.size()));
    const auto puzzle = parse_puzzle(request.problem->text);
    const auto first = static_cast<std::size_t>(request.first_new);
    std::vector<double> scores;
    scores.reserve(t.size() - first);
    auto state = to_rationals(puzzle);
    bool ok = true;  // every step so far legal, and no answer yet
    for (std::size_t i = 0; i < t.size(); ++i) {
      const std::string_view text = t.text(i);
      double s = 0.0;
      if (ok && is_answer_step(text)) {
        ok = false;
        s = check_answer(puzzle, answer_expression(text)) ? 1.0 : 0.0;
      } else if (ok) {
        const auto step = parse_step(text);
        ok = step && check_step(state, *step).empty();
        if (ok) {
          state = step->left;
          if (i >= first) s = solvable(state) ? 1.0 : 0.0;
        }
      }
      if (i >= first) scores.push_back(s);
    }
    return scores;
  }

 private:
  std::size_t max_batch_;
};

/// The exact outcome reward: 1 when the trajectory ends in an "Answer:" step whose
/// expression is correct for the puzzle, else 0.
class OracleOutcomeVerifier {
 public:
  explicit OracleOutcomeVerifier(std::size_t max_batch_size = 0) : max_batch_(max_batch_size) {}
  std::string name() const { return "game24-oracle-outcome"; }
  std::size_t max_batch_size() const noexcept { return max_batch_; }

  std::vector<double> score_outcomes(std::span<const OutcomeRequest> batch) const {
    std::vector<double> out;
    out.reserve(batch.size());
    const Game24Task task;
    for (const auto& request : batch) {
      if (request.problem == nullptr) throw InvalidArgument("OutcomeRequest.problem: null");
      const auto answer = task.extract_answer(request.trajectory);
      out.push_back(answer && task.check(*request.problem, *answer) ? 1.0 : 0.0);
    }
    return out;
  }

 private:
  std::size_t max_batch_;
};

static_assert(StepVerifier<OracleStepVerifier>);
static_assert(OutcomeVerifier<OracleOutcomeVerifier>);

}  // namespace qstar::game24
