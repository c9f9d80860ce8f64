// Game of 24: puzzles ("4 5 6 10") and the ToT step format (`a op b = c (left: x y z)`,
// then `Answer: <expr> = 24`): parsing, checking a step against the numbers left, legal moves.
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
#include "qstar/tasks/game24/rational.hpp"

namespace qstar::game24 {

// ---- puzzles ------------------------------------------------------------------------------

/// Parses a puzzle: exactly 4 integers in 1..13 separated by whitespace. Throws ParseError
/// naming the puzzle text and the reason, e.g. `puzzle "4 5 x": 'x' is not a number`.
inline std::vector<int> parse_puzzle(std::string_view text) {
  auto fail = [&](const std::string& reason) {
    throw ParseError(fmt::format("puzzle \"{}\": {}", text, reason));
  };
  const auto tokens = detail::split_ws(text);
  std::vector<int> out;
  out.reserve(tokens.size());
  for (const auto tok : tokens) {
    if (!std::all_of(tok.begin(), tok.end(), detail::is_digit))
      fail(fmt::format("'{}' is not a number", tok));
    const auto v = detail::parse_uint(tok);
    if (!v || *v < 1 || *v > 13) fail(fmt::format("{} is not in 1..13", tok));
    out.push_back(static_cast<int>(*v));
  }
  if (out.size() != 4) fail(fmt::format("expected 4 numbers, got {}", out.size()));
  return out;
}

// ---- steps ----------------------------------------------------------------------------------

/// Normalises an operator token: "+", "-", "*", "/", and the unicode "×" (U+00D7), "÷"
/// (U+00F7) and "−" (U+2212). Returns 0 for anything else (the letter 'x' included).
inline char parse_op(std::string_view tok) noexcept {
  if (tok == "+") return '+';
  if (tok == "-" || tok == "\xE2\x88\x92") return '-';
  if (tok == "*" || tok == "\xC3\x97") return '*';
  if (tok == "/" || tok == "\xC3\xB7") return '/';
  return 0;
}

/// The ToT step text `a op b = c (left: x y z)`.
inline std::string format_step(const Rational& a, char op, const Rational& b, const Rational& c,
                               std::span<const Rational> left) {
  return fmt::format("{} {} {} = {} (left: {})", a.to_string(), op, b.to_string(), c.to_string(),
                     join_numbers(left));
}

/// One parsed move step `a op b = c (left: ...)`; op is one of + - * / (normalised).
struct ParsedStep {
  Rational a, b, c;
  char op = '+';
  std::vector<Rational> left;  ///< the numbers the step says remain, in the step's order

  std::string to_string() const { return format_step(a, op, b, c, left); }
  bool operator==(const ParsedStep&) const = default;
};

/// True when the step is a final answer: it starts (after whitespace) with "Answer:".
inline bool is_answer_step(std::string_view text) noexcept {
  return detail::trim(text).starts_with("Answer:");
}

/// Parses a move step `a op b = c (left: x y z)`. Tokens are separated by whitespace; the
/// numbers may be negative ("-2") or fractions ("8/3"); the op is a standalone token (see
/// parse_op). Returns nullopt and sets *why when the text is malformed.
inline std::optional<ParsedStep> parse_step(std::string_view text, std::string* why = nullptr) {
  auto fail = [&](std::string reason) -> std::optional<ParsedStep> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  const std::string_view s = detail::trim(text);
  if (s.empty()) return fail("empty step");
  if (is_answer_step(s)) return fail("an answer step, not a move");
  const auto open = s.find('(');
  if (open == std::string_view::npos) return fail("missing \"(left: ...)\"");

  const auto head = detail::split_ws(s.substr(0, open));
  if (head.size() != 5)
    return fail(fmt::format("expected \"a op b = c\" before \"(left: ...)\", got {} tokens",
                            head.size()));
  ParsedStep step;
  std::string reason;
  auto a = Rational::parse(head[0], &reason);
  if (!a) return fail(reason);
  step.op = parse_op(head[1]);
  if (step.op == 0) return fail(fmt::format("'{}' is not an operator (+ - * /)", head[1]));
  auto b = Rational::parse(head[2], &reason);
  if (!b) return fail(reason);
  if (head[3] != "=") return fail(fmt::format("expected '=', got '{}'", head[3]));
  auto c = Rational::parse(head[4], &reason);
  if (!c) return fail(reason);
  step.a = *a;
  step.b = *b;
  step.c = *c;

  // "(" ws "left" ws ":" numbers ")" ws
  std::string_view tail = detail::trim(s.substr(open + 1));
  if (!tail.starts_with("left")) return fail("expected \"(left: ...)\"");
  tail = detail::trim(tail.substr(4));
  if (!tail.starts_with(':')) return fail("expected ':' after \"(left\"");
  tail.remove_prefix(1);
  const auto close = tail.find(')');
  if (close == std::string_view::npos) return fail("missing ')'");
  if (!detail::trim(tail.substr(close + 1)).empty())
    return fail(
        fmt::format("unexpected text after ')': '{}'", detail::trim(tail.substr(close + 1))));
  const auto numbers = detail::split_ws(tail.substr(0, close));
  if (numbers.empty()) return fail("empty left list");
  step.left.reserve(numbers.size());
  for (const auto tok : numbers) {
    auto r = Rational::parse(tok, &reason);
    if (!r) return fail("left list: " + reason);
    step.left.push_back(*r);
  }
  return step;
}

/// Checks a move against the current state (a multiset). Returns "" when legal, else why:
/// a and b must both be present (a == b needs two copies), c must equal a op b exactly, and
/// the left list must equal state - {a, b} + {c} as a multiset.
inline std::string check_step(const std::vector<Rational>& state, const ParsedStep& step) {
  std::vector<Rational> rest = state;
  auto take = [&rest](const Rational& x) {
    const auto it = std::find(rest.begin(), rest.end(), x);
    if (it == rest.end()) return false;
    rest.erase(it);
    return true;
  };
  if (!take(step.a))
    return fmt::format("{} is not among the remaining numbers ({})", step.a.to_string(),
                       join_numbers(state));
  if (!take(step.b)) {
    if (step.a == step.b)
      return fmt::format("{} is used twice but appears once among the remaining numbers ({})",
                         step.b.to_string(), join_numbers(state));
    return fmt::format("{} is not among the remaining numbers ({})", step.b.to_string(),
                       join_numbers(state));
  }
  std::string why;
  const auto value = apply(step.op, step.a, step.b, &why);
  if (!value)
    return fmt::format("{} {} {}: {}", step.a.to_string(), step.op, step.b.to_string(), why);
  if (*value != step.c)
    return fmt::format("{} {} {} is {}, not {}", step.a.to_string(), step.op, step.b.to_string(),
                       value->to_string(), step.c.to_string());
  rest.push_back(*value);
  std::sort(rest.begin(), rest.end());
  std::vector<Rational> given = step.left;
  std::sort(given.begin(), given.end());
  if (given != rest)
    return fmt::format("left list ({}) should be ({})", join_numbers(step.left),
                       join_numbers(rest));
  return {};
}

/// Every legal move from `state`, in a fixed canonical order: the state sorted ascending,
/// unordered pairs (i < j, so a <= b), then a + b, a * b, b - a, a - b, b / a, a / b
/// (divisions by zero skipped). Moves with identical text (from repeated numbers) appear
/// once. Each move's left list is sorted ascending. Cost: 3n(n-1) moves of n - 1 numbers
/// each, so O(n^3) time and memory for n numbers (a Game of 24 state has at most 4; callers
/// that take a state from untrusted text bound n first, as ProgrammaticGenerator does).
inline std::vector<ParsedStep> legal_moves(std::vector<Rational> state) {
  std::sort(state.begin(), state.end());
  std::vector<ParsedStep> moves;
  std::unordered_set<std::string> texts;  // for deduplication (a linear scan was O(n^4))
  std::vector<Rational> rest;
  for (std::size_t i = 0; i < state.size(); ++i) {
    for (std::size_t j = i + 1; j < state.size(); ++j) {
      const Rational& a = state[i];
      const Rational& b = state[j];
      rest.clear();
      for (std::size_t k = 0; k < state.size(); ++k)
        if (k != i && k != j) rest.push_back(state[k]);
      const std::array<std::pair<std::pair<const Rational*, const Rational*>, char>, 6> forms{{
          {{&a, &b}, '+'}, {{&a, &b}, '*'}, {{&b, &a}, '-'},
          {{&a, &b}, '-'}, {{&b, &a}, '/'}, {{&a, &b}, '/'}}};
      for (const auto& [operands, op] : forms) {
        const auto c = apply(op, *operands.first, *operands.second);
        if (!c) continue;
        ParsedStep m{*operands.first, *operands.second, *c, op, rest};
        m.left.insert(std::upper_bound(m.left.begin(), m.left.end(), *c), *c);
        if (!texts.insert(m.to_string()).second) continue;
        moves.push_back(std::move(m));
      }
    }
  }
  return moves;
}

}  // namespace qstar::game24
