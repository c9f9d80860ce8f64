// Game of 24: trajectories replayed from the puzzle, and the Task plug-in (Game24Task).
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
#include "qstar/tasks/game24/solver.hpp"

namespace qstar::game24 {

// ---- trajectories -------------------------------------------------------------------------
namespace detail {

template <class GetText>
std::optional<std::vector<Rational>> replay(const std::vector<int>& puzzle, std::size_t n,
                                            GetText&& get_text, std::string* why) {
  auto state = to_rationals(puzzle);
  std::sort(state.begin(), state.end());
  std::string reason;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string_view text = get_text(i);
    if (is_answer_step(text)) {
      if (i + 1 == n) break;  // the final answer moves nothing
      reason = "an answer step before the last step";
    } else if (auto step = parse_step(text, &reason)) {
      reason = check_step(state, *step);
      if (reason.empty()) {
        state = std::move(step->left);
        std::sort(state.begin(), state.end());
        continue;
      }
    }
    if (why) *why = fmt::format("step {}: {}", i + 1, reason);
    return std::nullopt;
  }
  return state;
}

}  // namespace detail

/// Replays the steps exactly from the puzzle and returns the numbers left (sorted
/// ascending). A final "Answer:" step is skipped (it moves nothing). Returns nullopt and sets
/// *why ("step 2: ...") when a step is malformed or illegal.
inline std::optional<std::vector<Rational>> state_after(const std::vector<int>& puzzle,
                                                        std::span<const std::string> steps,
                                                        std::string* why = nullptr) {
  return detail::replay(puzzle, steps.size(),
                        [&](std::size_t i) { return std::string_view(steps[i]); }, why);
}
/// state_after over the steps of a trajectory.
inline std::optional<std::vector<Rational>> state_after(const std::vector<int>& puzzle,
                                                        const TrajectoryView& trajectory,
                                                        std::string* why = nullptr) {
  return detail::replay(puzzle, trajectory.size(),
                        [&](std::size_t i) { return trajectory.text(i); }, why);
}

/// The expression over the puzzle's inputs that a sequence of move steps describes, built as
/// ToT's LLM does: each step's operands are replaced by the expressions that produced them
/// (matched by value), e.g. "4 + 8 = 12", "6 - 4 = 2", "2 * 12 = 24" over 4 4 6 8 gives
/// "(6 - 4) * (4 + 8)". Steps that do not parse are skipped; an operand that matches nothing
/// is written as its number. Returns the expression of the last step's result (the inputs
/// joined by " + " when no step parsed).
template <class Texts>
std::string substitute_steps(const std::vector<int>& puzzle, const Texts& steps) {
  std::vector<detail::ExprItem> items;
  for (const int v : puzzle) items.push_back({Rational(v), std::to_string(v)});
  std::optional<std::size_t> last;
  auto take = [&](const Rational& x) {
    const auto it = std::find_if(items.begin(), items.end(),
                                 [&](const detail::ExprItem& e) { return e.value == x; });
    if (it == items.end()) {  // not a number we have: written as itself
      const bool plain = x.is_integer() && x.num() >= 0;
      return detail::ExprItem{x, plain ? x.to_string() : "(" + x.to_string() + ")"};
    }
    detail::ExprItem e = std::move(*it);
    items.erase(it);
    return e;
  };
  for (const auto& text : steps) {
    const auto step = parse_step(std::string_view(text));
    if (!step) continue;
    const auto a = take(step->a);
    const auto b = take(step->b);
    items.push_back(detail::combine_items(a, step->op, b, step->c));
    last = items.size() - 1;
  }
  if (last) return items[*last].expr;
  std::string out;
  for (const auto& e : items) out += (out.empty() ? "" : " + ") + e.expr;
  return out;
}

// ---- the Task plug-in ---------------------------------------------------------------------

/// The Game of 24 task: prompts, terminal steps, answer extraction, voting keys and the exact
/// checker. Problem::text is the puzzle ("4 5 6 10").
struct Game24Task {
  /// A short ToT-style prompt ending with the input numbers.
  std::string format(const Problem& problem) const {
    return fmt::format(
        "Use numbers and basic arithmetic operations (+ - * /) to obtain 24. Each step, choose "
        "two of the remaining numbers to obtain a new number.\nInput: {}\nSteps:\n",
        detail::normalize_ws(problem.text));
  }
  /// The marker of a final step, for backends that flag answers as they generate
  /// (LMGeneratorParams::answer_marker, the HTTP generator's answer_marker).
  static constexpr std::string_view answer_marker() { return "Answer:"; }
  /// An "Answer:" step ends the solution (so does any step whose finish reason does).
  bool is_terminal(const Step& step) const {
    return is_answer_step(step.text) || ends_solution(step.finish);
  }
  /// The expression of the last step if it is an "Answer:" step (without "= 24").
  std::optional<std::string> extract_answer(const TrajectoryView& trajectory) const {
    if (trajectory.empty()) return std::nullopt;
    const std::string_view last = trajectory.text(trajectory.size() - 1);
    if (!is_answer_step(last)) return std::nullopt;
    return std::string(answer_expression(last));
  }
  std::string canonicalize(std::string_view answer) const { return canonical_expression(answer); }
  /// check_answer on the problem's puzzle; throws ParseError if Problem::text is no puzzle.
  bool check(const Problem& problem, std::string_view answer) const {
    return check_answer(parse_puzzle(problem.text), answer);
  }
};

static_assert(Task<Game24Task> && CheckedTask<Game24Task>);

}  // namespace qstar::game24
