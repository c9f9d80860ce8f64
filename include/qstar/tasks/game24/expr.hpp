// Game of 24: answer expressions: evaluation, canonical form (the voting key) and the check.
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
#include "qstar/tasks/game24/steps.hpp"

namespace qstar::game24 {

// ---- expressions --------------------------------------------------------------------------
namespace detail {

/// A canonical form under construction: a leaf, or a flattened sum (items negated or not)
/// or product (items inverted or not) whose items are already rendered canonical keys.
struct CanonNode {
  enum class Kind : std::uint8_t { Leaf, Sum, Product };
  Kind kind = Kind::Leaf;
  std::string text;                                   ///< Leaf: the normalised number
  std::vector<std::pair<bool, std::string>> items;    ///< Sum/Product: (negated|inverted, key)
};

/// Order of items in a canonical key: plain numbers first (by value), then the rest as text.
inline bool key_less(const std::string& x, const std::string& y) noexcept {
  const bool nx = std::all_of(x.begin(), x.end(), is_digit);
  const bool ny = std::all_of(y.begin(), y.end(), is_digit);
  if (nx != ny) return nx;
  if (nx && x.size() != y.size()) return x.size() < y.size();
  return x < y;
}

inline std::string render(CanonNode& n) {
  if (n.kind == CanonNode::Kind::Leaf) return n.text;
  std::stable_sort(n.items.begin(), n.items.end(), [](const auto& x, const auto& y) {
    if (x.first != y.first) return !x.first;  // positive/numerator items first
    return key_less(x.second, y.second);
  });
  const bool sum = n.kind == CanonNode::Kind::Sum;
  std::string out;
  for (std::size_t i = 0; i < n.items.size(); ++i) {
    const auto& [flag, key] = n.items[i];
    if (i > 0) out.append(flag ? (sum ? " - " : " / ") : (sum ? " + " : " * "));
    out.append(key);
  }
  return out;
}

/// Adds `child` to a sum (negated or not), flattening a child sum into it.
inline void add_to_sum(CanonNode& sum, CanonNode&& child, bool negate) {
  if (child.kind == CanonNode::Kind::Sum) {
    for (auto& [neg, key] : child.items) sum.items.emplace_back(neg != negate, std::move(key));
  } else {
    sum.items.emplace_back(negate, render(child));
  }
}

/// Adds `child` to a product (inverted or not), flattening a child product into it; a child
/// sum is parenthesised.
inline void add_to_product(CanonNode& prod, CanonNode&& child, bool invert) {
  if (child.kind == CanonNode::Kind::Product) {
    for (auto& [inv, key] : child.items) prod.items.emplace_back(inv != invert, std::move(key));
  } else if (child.kind == CanonNode::Kind::Sum) {
    prod.items.emplace_back(invert, "(" + render(child) + ")");
  } else {
    prod.items.emplace_back(invert, std::move(child.text));
  }
}

/// Recursive-descent parser and evaluator for infix expressions over non-negative integer
/// literals with + - * / (and × ÷ −) and parentheses. There is no unary minus. Evaluation
/// happens in the parse loops, so only parentheses recurse (bounded by kMaxDepth).
class ExprParser {
 public:
  static constexpr int kMaxDepth = 64;

  ExprParser(std::string_view s, bool want_canon, std::vector<Rational>* leaves)
      : s_(s), want_canon_(want_canon), leaves_(leaves) {}

  /// Parses the whole text; false on a syntax error (see error()).
  bool run() {
    skip_ws();
    if (pos_ == s_.size()) return syntax_error("empty expression");
    if (!parse_expr(result_, 0)) return false;
    skip_ws();
    if (pos_ != s_.size()) return unexpected();
    return true;
  }
  const std::string& error() const noexcept { return error_; }
  /// The value; nullopt on a syntax error or an arithmetic one (see value_error()).
  const std::optional<Rational>& value() const noexcept { return result_.value; }
  const std::string& value_error() const noexcept { return value_error_; }
  CanonNode& canon() noexcept { return result_.canon; }

 private:
  struct Sub {
    std::optional<Rational> value;
    CanonNode canon;
  };

  void skip_ws() noexcept {
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
  }
  bool syntax_error(std::string msg) {
    error_ = std::move(msg);
    return false;
  }
  bool unexpected() {
    if (pos_ >= s_.size()) return syntax_error("unexpected end of expression");
    return syntax_error(fmt::format("unexpected '{}' at position {}",
                                    s_.substr(pos_, utf8_length(s_[pos_])), pos_));
  }
  /// The operator at the cursor among `ops` ("+-" or "*/"), consuming it; 0 if none.
  char take_op(bool additive) noexcept {
    skip_ws();
    const std::string_view rest = s_.substr(pos_);
    auto take = [&](std::size_t n, char op) {
      pos_ += n;
      return op;
    };
    if (additive) {
      if (rest.starts_with('+')) return take(1, '+');
      if (rest.starts_with('-')) return take(1, '-');
      if (rest.starts_with("\xE2\x88\x92")) return take(3, '-');
    } else {
      if (rest.starts_with('*')) return take(1, '*');
      if (rest.starts_with('/')) return take(1, '/');
      if (rest.starts_with("\xC3\x97")) return take(2, '*');
      if (rest.starts_with("\xC3\xB7")) return take(2, '/');
    }
    return 0;
  }
  void combine(std::optional<Rational>& acc, char op, const std::optional<Rational>& rhs) {
    if (!acc || !rhs) {
      acc.reset();
      return;
    }
    std::string why;
    acc = apply(op, *acc, *rhs, &why);
    if (!acc && value_error_.empty()) value_error_ = why;
  }

  bool parse_chain(Sub& out, int depth, bool additive) {
    Sub first;
    if (!(additive ? parse_chain(first, depth, false) : parse_factor(first, depth))) return false;
    char op = take_op(additive);
    if (op == 0) {
      out = std::move(first);
      return true;
    }
    out.value = first.value;
    if (want_canon_) {
      out.canon.kind = additive ? CanonNode::Kind::Sum : CanonNode::Kind::Product;
      additive ? add_to_sum(out.canon, std::move(first.canon), false)
               : add_to_product(out.canon, std::move(first.canon), false);
    }
    for (; op != 0; op = take_op(additive)) {
      Sub rhs;
      if (!(additive ? parse_chain(rhs, depth, false) : parse_factor(rhs, depth))) return false;
      combine(out.value, op, rhs.value);
      if (want_canon_) {
        additive ? add_to_sum(out.canon, std::move(rhs.canon), op == '-')
                 : add_to_product(out.canon, std::move(rhs.canon), op == '/');
      }
    }
    return true;
  }
  bool parse_expr(Sub& out, int depth) { return parse_chain(out, depth, true); }

  bool parse_factor(Sub& out, int depth) {
    skip_ws();
    if (pos_ >= s_.size()) return unexpected();
    const char c = s_[pos_];
    if (c == '(') {
      if (depth + 1 > kMaxDepth)
        return syntax_error(fmt::format("expression nested too deeply (more than {} levels)",
                                        kMaxDepth));
      ++pos_;
      if (!parse_expr(out, depth + 1)) return false;
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ')') {
        if (pos_ >= s_.size()) return syntax_error("missing ')'");
        return unexpected();
      }
      ++pos_;
      return true;
    }
    if (is_digit(c)) {
      const std::size_t start = pos_;
      while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
      const auto v = parse_uint(s_.substr(start, pos_ - start));
      if (!v)
        return syntax_error(
            fmt::format("number '{}' is too large", s_.substr(start, pos_ - start)));
      out.value = Rational(*v);
      if (leaves_) leaves_->push_back(*out.value);
      if (want_canon_) out.canon.text = out.value->to_string();
      return true;
    }
    return unexpected();
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  bool want_canon_;
  std::vector<Rational>* leaves_;
  Sub result_;
  std::string error_;
  std::string value_error_;
};

}  // namespace detail

/// Evaluates an infix expression over non-negative integers with + - * / (also × ÷ −) and
/// parentheses, exactly. No unary minus, at most 64 nested parentheses. When `leaves` is
/// given it is cleared and receives the number literals in order of appearance. Returns
/// nullopt and sets *why on junk, on division by zero and on int64 overflow.
inline std::optional<Rational> eval_expression(std::string_view expr,
                                               std::vector<Rational>* leaves = nullptr,
                                               std::string* why = nullptr) {
  if (leaves) leaves->clear();
  detail::ExprParser p(expr, false, leaves);
  if (!p.run()) {
    if (why) *why = p.error();
    return std::nullopt;
  }
  if (!p.value() && why) *why = p.value_error();
  return p.value();
}

/// The expression of an answer: strips a leading "Answer:" and a trailing "= 24", trimmed.
/// The view points into `text`.
inline std::string_view answer_expression(std::string_view text) noexcept {
  std::string_view s = detail::trim(text);
  if (s.starts_with("Answer:")) s = detail::trim(s.substr(7));
  const auto eq = s.rfind('=');
  if (eq != std::string_view::npos && detail::trim(s.substr(eq + 1)) == "24")
    s = detail::trim(s.substr(0, eq));
  return s;
}

/// A voting key: expressions equal up to commutativity and associativity of + and * get the
/// same key. +/- chains and * / chains are flattened (through parentheses, flipping signs
/// under '-' and '/'), operands sorted, and the result rendered as a valid expression, e.g.
/// "(5 - 1) * (10 - 4)" and "(10 - 4) * (5 - 1)" both give "(10 - 4) * (5 - 1)". A leading
/// "Answer:" and a trailing "= 24" are ignored. Text that does not parse gives itself with
/// its whitespace normalised.
inline std::string canonical_expression(std::string_view expr) {
  const std::string_view s = answer_expression(expr);
  detail::ExprParser p(s, true, nullptr);
  if (!p.run()) return detail::normalize_ws(s);
  return detail::render(p.canon());
}

/// True when `answer_expr` (an expression, optionally followed by "= 24"; a leading
/// "Answer:" is also accepted) uses exactly the puzzle's multiset of numbers and evaluates
/// to exactly 24.
inline bool check_answer(const std::vector<int>& puzzle, std::string_view answer_expr) {
  std::vector<Rational> leaves;
  const auto v = eval_expression(answer_expression(answer_expr), &leaves);
  if (!v || *v != 24 || leaves.size() != puzzle.size()) return false;
  auto want = to_rationals(puzzle);
  std::sort(want.begin(), want.end());
  std::sort(leaves.begin(), leaves.end());
  return leaves == want;
}

}  // namespace qstar::game24
