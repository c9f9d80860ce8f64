// The math answer grader of the math task (issue #21): final-answer extraction from a whole
// solution, text normalisation, equivalence of two answers (lenient or strict) and the voting
// key. Task-independent: no prompts, no models. Implemented in src/tasks/math (library
// qstar_math; exact arithmetic with Boost.Multiprecision, kept private).
//
// What an answer can be (after normalize_answer):
//  * a scalar: numbers (integers with thousands separators, decimals, fractions \frac \dfrac
//    \tfrac a/b, mixed numbers `3\frac12` / `3 1/2`, negatives, percentages), and a LaTeX
//    subset: + - * / ^, implicit multiplication, \sqrt{x} \sqrt[n]{x}, \pi, i, \infty,
//    \sin \cos \tan \ln \log \exp, variables (single letters, Greek letters, subscripts);
//  * a tuple / point / interval: `(a, b)`, `[a, b)`, ... (ordered; brackets must match);
//  * an unordered list (roots): `1, -2` or `x = 1, x = -2`, and sets `\{1, 2\}`;
//  * a union of intervals: `(-\infty, 1) \cup (2, \infty)` (ordered);
//  * a matrix: `\begin{pmatrix} a & b \\ c & d \end{pmatrix}` (also bmatrix);
//  * anything else compares as normalised text.
// Scalars compare exactly (Gaussian rationals) when both evaluate exactly; otherwise by
// complex floating-point evaluation, at seeded random points when variables appear.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace qstar::math {

/// How forgiving answers_equal is.
///  * Lenient (the default; like Qwen2.5-Math's math_equal): relative tolerance 1e-4 when
///    either side holds a decimal with a nonzero fractional part (`0.3333`; `12.0` is exact),
///    `50\%` equals `50` and `0.5`, an unreduced fraction equals the reduced one, `4.0`
///    equals `4`, text compares case-insensitively.
///  * Strict (like PRM800K's grader): no decimal tolerance, a percent sign is only dropped
///    (`50\%` equals `50`, not `0.5`), an integer gold needs an integer or decimal literal of
///    that value (`4`, `4.0`; not `8/2`), two plain fractions must be written identically
///    (`2/4` is not `1/2`), text
///    compares case-sensitively; symbolic answers compare at random points with relative
///    tolerance 1e-9 (lenient: 1e-6).
enum class GradeMode { Lenient, Strict };

/// Bounds on the work one call may do on hostile input. Past a bound the answer is treated
/// as text (never equal to anything but the same text) rather than hanging or exhausting
/// memory.
struct GraderLimits {
  /// Longest answer (bytes, before normalisation) that is normalised and parsed; a longer one
  /// equals only the byte-identical text (if not blank), and is its own voting key.
  std::size_t max_answer_bytes = 1024;
  /// Largest |integer exponent| of an exactly evaluated power (an answer with a larger one
  /// compares as text).
  int max_exponent = 1000;
  /// Deepest nesting of brackets/braces/operators the parser follows.
  int max_depth = 64;
  /// Most parse + evaluation steps (AST nodes visited, summed over all evaluations).
  std::size_t max_steps = 200000;
  /// Largest exact number (bits of numerator + denominator); an answer whose exact value
  /// would be larger compares as text (never approximately).
  std::size_t max_exact_bits = 8192;
  /// Most elements in a tuple, list, set or matrix.
  std::size_t max_elements = 64;

  /// Throws qstar::InvalidArgument naming the field when a bound is zero or out of range.
  void validate() const;
};

/// The final answer of a whole solution text: the content of the last brace-matched
/// \boxed{...} or \fbox{...} (also `\boxed 5`); else the rest of the line after the last
/// "The answer is" (case-insensitive); else the rest of the line after the last "####";
/// else nullopt. Unbalanced braces in the last \boxed give nullopt. Trailing punctuation and
/// `$` are trimmed from the "answer is" / "####" forms.
std::optional<std::string> extract_answer(std::string_view solution);

/// Whether `answer` equals `gold` (see GradeMode for the two modes). Never throws for any
/// input text; throws qstar::InvalidArgument for invalid limits.
bool answers_equal(std::string_view gold, std::string_view answer,
                   GradeMode mode = GradeMode::Lenient, const GraderLimits& limits = {});

/// The voting key: a canonical value string when the answer evaluates (`\frac12`, `0.5`,
/// `1/2` and `50\%`... give "1/2"; exact values print as reduced fractions or `a+bi`;
/// irrational constants as `~` and 10 significant digits, so `3\sqrt{13}` and `\sqrt{117}`
/// share a key), structures as their elements' keys (unordered lists sorted), else the
/// normalised text. Equal keys imply answers_equal in lenient mode; the converse fails for
/// tolerance matches (0.3333 vs 1/3) and symbolic rewrites (x+1 vs 1+x).
std::string canonical_key(std::string_view answer, const GraderLimits& limits = {});

/// The normalised text: \left/\right, \text{...} units, ^\circ, \$ and $, "x =" prefixes,
/// spacing commands (\! \, \;), \displaystyle, trailing punctuation and spaces stripped;
/// \dfrac/\tfrac become \frac, \% becomes %, \leq/\geq become \le/\ge, thousands separators
/// in a lone number are removed. Never throws. Unbounded input: answers_equal and
/// canonical_key only call it on answers within GraderLimits::max_answer_bytes.
std::string normalize_answer(std::string_view answer);

}  // namespace qstar::math
