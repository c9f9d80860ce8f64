// Private to qstar_math: the LaTeX-subset expression parser and its two evaluators (exact
// Gaussian rationals, complex doubles). See include/qstar/tasks/math/grader.hpp.
#pragma once

#include <complex>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/multiprecision/cpp_int.hpp>

#include "qstar/tasks/math/grader.hpp"

namespace qstar::math::detail {

using Rational = boost::multiprecision::cpp_rational;
using Int = boost::multiprecision::cpp_int;

/// An exact complex rational re + im*i.
struct Exact {
  Rational re, im;
  bool operator==(const Exact&) const = default;
  std::string to_string() const;
};

/// Thrown (internally only) when a GraderLimits bound is hit; callers fall back to text.
struct LimitHit {};

/// Work counter shared by the parse and every evaluation of one grader call.
struct Budget {
  const GraderLimits* limits;
  std::size_t steps = 0;
  void tick() {
    if (++steps > limits->max_steps) throw LimitHit{};
  }
};

enum class Op { Num, Var, Pi, I, Inf, Neg, Add, Sub, Mul, Div, Pow, Sqrt, Func };

struct Node {
  Op op = Op::Num;
  Rational value;      // Num
  bool decimal = false;  // Num written with a decimal point
  bool int_literal = false;  // Num written as plain digits
  std::string name;    // Var / Func
  std::unique_ptr<Node> a, b;  // operands (Sqrt: a radicand, b index or null)
};
using NodePtr = std::unique_ptr<Node>;

/// Parses a whole (normalised) scalar expression; nullopt when it is not in the subset.
/// Throws LimitHit past the depth/step bounds.
NodePtr parse_expression(std::string_view text, Budget& budget);

/// Exact value, when the expression is built from numbers, i, + - * /, integer powers and
/// square roots of perfect squares only. Throws LimitHit past max_exponent / max_exact_bits
/// (such an answer compares as text, never approximately).
std::optional<Exact> eval_exact(const Node& n, Budget& budget);

/// Complex floating-point value with the given variable assignment.
using Assignment = std::vector<std::pair<std::string, std::complex<double>>>;
std::complex<double> eval_complex(const Node& n, const Assignment& vars, Budget& budget);

/// Variable names used (sorted, unique).
void collect_vars(const Node& n, std::vector<std::string>& out);

/// Whether any number literal in the tree is a decimal with a nonzero fractional part
/// ("0.333", not "12.0": an integral decimal is read as exact).
bool has_decimal(const Node& n);

/// normalize_answer's text rules; strip_lhs=false keeps a "x =" prefix (list elements whose
/// left-hand sides differ, "a = 1, b = 2").
std::string normalize_text(std::string_view answer, bool strip_lhs);

/// Where the value starts after a lone-variable left-hand side ("x =", "\\theta=", "a_{1} =",
/// "x \\in"), or 0 when there is none.
std::size_t lone_variable_prefix(std::string_view s);

}  // namespace qstar::math::detail
