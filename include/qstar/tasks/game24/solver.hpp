// Game of 24: the exact solver (is a number list solvable, one solution expression).
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
#include "qstar/tasks/game24/expr.hpp"

namespace qstar::game24 {

// ---- exact solver -------------------------------------------------------------------------
namespace detail {

struct RationalVecHash {
  std::size_t operator()(const std::vector<Rational>& v) const noexcept {
    std::uint64_t h = v.size();
    for (const auto& r : v) h = splitmix64(h ^ RationalHash{}(r));
    return static_cast<std::size_t>(h);
  }
};

/// The results of a op b for every operator and order, in canonical order:
/// a+b, a*b, a-b, b-a, a/b, b/a (divisions by zero and overflows skipped). Returns the count.
inline std::size_t combine_all(const Rational& a, const Rational& b,
                               std::array<Rational, 6>& out) noexcept {
  std::size_t n = 0;
  auto put = [&](char op, const Rational& x, const Rational& y) {
    if (auto r = apply(op, x, y)) out[n++] = *r;
  };
  put('+', a, b);
  put('*', a, b);
  put('-', a, b);
  put('-', b, a);
  put('/', a, b);
  put('/', b, a);
  return n;
}

/// Memoised on the sorted multiset; `nums` must be sorted.
inline bool solvable_sorted(const std::vector<Rational>& nums) {
  if (nums.empty()) return false;
  if (nums.size() == 1) return nums[0] == 24;
  std::array<Rational, 6> results;
  if (nums.size() == 2) {
    const std::size_t n = combine_all(nums[0], nums[1], results);
    return std::any_of(results.begin(), results.begin() + static_cast<std::ptrdiff_t>(n),
                       [](const Rational& r) { return r == 24; });
  }
  using Cache = std::unordered_map<std::vector<Rational>, bool, RationalVecHash>;
  thread_local Cache cache;
  if (const auto it = cache.find(nums); it != cache.end()) return it->second;

  bool ok = false;
  std::vector<Rational> rest, next;
  for (std::size_t i = 0; i < nums.size() && !ok; ++i) {
    for (std::size_t j = i + 1; j < nums.size() && !ok; ++j) {
      rest.clear();
      for (std::size_t k = 0; k < nums.size(); ++k)
        if (k != i && k != j) rest.push_back(nums[k]);
      const std::size_t n = combine_all(nums[i], nums[j], results);
      for (std::size_t r = 0; r < n && !ok; ++r) {
        next = rest;
        next.insert(std::upper_bound(next.begin(), next.end(), results[r]), results[r]);
        ok = solvable_sorted(next);
      }
    }
  }
  constexpr std::size_t kMaxEntries = std::size_t{1} << 20;
  if (cache.size() >= kMaxEntries) cache.clear();
  cache.emplace(nums, ok);
  return ok;
}

/// A number and the expression over the inputs that produced it.
struct ExprItem {
  Rational value;
  std::string expr;
  char op = 0;  ///< the expression's top-level operator, 0 for a number
};

/// Whether an operand whose top-level operator is `child` needs parentheses under `parent`
/// (as its right operand when `right`). Exact arithmetic makes + and * fully associative.
inline constexpr bool needs_parens(char child, char parent, bool right) noexcept {
  if (child == 0) return false;
  const bool additive = child == '+' || child == '-';
  switch (parent) {
    case '+': return false;
    case '-': return right && additive;
    case '*': return additive;
    default: return additive || right;  // '/'
  }
}

/// x op y with as few parentheses as the precedence rules need, e.g. "(6 - 4) * (4 + 8)".
inline ExprItem combine_items(const ExprItem& x, char op, const ExprItem& y, const Rational& v) {
  auto operand = [op](const ExprItem& e, bool right) {
    return needs_parens(e.op, op, right) ? "(" + e.expr + ")" : e.expr;
  };
  return {v, fmt::format("{} {} {}", operand(x, false), op, operand(y, true)), op};
}

inline bool solve_items(std::vector<ExprItem>& items, std::string& out) {
  if (items.size() == 1) {
    if (items[0].value != 24) return false;
    out = items[0].expr;
    return true;
  }
  std::vector<ExprItem> next;
  std::vector<Rational> values;
  for (std::size_t i = 0; i < items.size(); ++i) {
    for (std::size_t j = i + 1; j < items.size(); ++j) {
      const ExprItem& a = items[i];
      const ExprItem& b = items[j];
      const std::array<std::pair<std::pair<const ExprItem*, const ExprItem*>, char>, 6> forms{{
          {{&a, &b}, '+'}, {{&a, &b}, '*'}, {{&a, &b}, '-'},
          {{&b, &a}, '-'}, {{&a, &b}, '/'}, {{&b, &a}, '/'}}};
      for (const auto& [xy, op] : forms) {
        const auto v = apply(op, xy.first->value, xy.second->value);
        if (!v) continue;
        next.clear();
        values.clear();
        for (std::size_t k = 0; k < items.size(); ++k) {
          if (k == i || k == j) continue;
          next.push_back(items[k]);
          values.push_back(items[k].value);
        }
        values.push_back(*v);
        std::sort(values.begin(), values.end());
        if (!solvable_sorted(values)) continue;
        next.push_back(combine_items(*xy.first, op, *xy.second, *v));
        return solve_items(next, out);  // solvable, so this succeeds
      }
    }
  }
  return false;
}

}  // namespace detail

/// Can these numbers make exactly 24 with + - * /, each used once? (One number: is it 24?)
/// Memoised per thread on the sorted multiset (the search is exponential in the count of
/// numbers: meant for puzzles of four or so).
inline bool solvable(std::vector<Rational> numbers) {
  std::sort(numbers.begin(), numbers.end());
  return detail::solvable_sorted(numbers);
}

/// One expression over the puzzle's numbers that check_answer accepts, e.g.
/// "(10 - 4) * (5 - 1)"; nullopt when the numbers cannot make 24.
inline std::optional<std::string> solve(const std::vector<int>& puzzle) {
  std::vector<detail::ExprItem> items;
  items.reserve(puzzle.size());
  for (const int v : puzzle) items.push_back({Rational(v), std::to_string(v)});
  std::string out;
  if (items.empty() || !detail::solve_items(items, out)) return std::nullopt;
  return out;
}

}  // namespace qstar::game24
