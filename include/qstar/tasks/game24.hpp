// Game of 24, the Tree of Thoughts benchmark (Yao et al. 2023, "Tree of Thoughts: Deliberate
// Problem Solving with Large Language Models"): combine four numbers 1-13 with + - * /, each
// used once, to make exactly 24. This header holds everything qstar needs for it: exact
// rational arithmetic, the ToT step format (`a op b = c (left: x y z)`, then
// `Answer: <expr> = 24`), an expression evaluator and canonicaliser, an exact solver, the
// Task plug-in, a programmatic generator that behaves like a (possibly weak) proposer, the
// oracle step/outcome verifiers, and the 24.csv loader.
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

namespace qstar::game24 {

// ---- text helpers --------------------------------------------------------------------------
namespace detail {

inline constexpr bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
inline constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

/// Splits on runs of ASCII whitespace; no empty pieces.
inline std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    const std::size_t start = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

/// The text with every run of whitespace turned into one space, trimmed.
inline std::string normalize_ws(std::string_view s) {
  std::string out;
  for (const auto piece : split_ws(s)) {
    if (!out.empty()) out.push_back(' ');
    out.append(piece);
  }
  return out;
}

/// Length of the UTF-8 sequence starting with lead byte c (1 for ASCII or a stray byte).
inline constexpr std::size_t utf8_length(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  if ((u & 0xE0u) == 0xC0u) return 2;
  if ((u & 0xF0u) == 0xE0u) return 3;
  if ((u & 0xF8u) == 0xF0u) return 4;
  return 1;
}

/// Parses a whole string of decimal digits (no sign) into a non-negative int64.
inline std::optional<std::int64_t> parse_uint(std::string_view s) noexcept {
  if (s.empty()) return std::nullopt;
  std::int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v < 0) return std::nullopt;
  if (!std::all_of(s.begin(), s.end(), is_digit)) return std::nullopt;
  return v;
}

inline __uint128_t gcd_u128(__uint128_t a, __uint128_t b) noexcept {
  constexpr __uint128_t k64 = std::numeric_limits<std::uint64_t>::max();
  while (b != 0) {
    if (a <= k64 && b <= k64)
      return std::gcd(static_cast<std::uint64_t>(a), static_cast<std::uint64_t>(b));
    const __uint128_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

}  // namespace detail

// ---- Rational ------------------------------------------------------------------------------

/// An exact rational number num/den with int64 parts, always normalised: gcd(num, den) == 1
/// and den > 0. Intermediate products are computed in 128 bits; a result that does not fit
/// int64 throws qstar::Error ("overflow"), division by zero throws qstar::InvalidArgument.
/// The numerator never takes the value INT64_MIN, so negation is always exact.
class Rational {
 public:
  constexpr Rational() noexcept = default;
  /// The integer n (implicit, so `Rational r = 24;` and `r == 24` read naturally).
  constexpr Rational(std::int64_t n) : num_(n) {  // NOLINT(google-explicit-constructor)
    if (n == std::numeric_limits<std::int64_t>::min()) throw Error("Rational: int64 overflow");
  }
  /// num/den, normalised. Throws InvalidArgument when den == 0.
  Rational(std::int64_t num, std::int64_t den) {
    if (den == 0) throw InvalidArgument("Rational: zero denominator");
    const auto r = make(num, den);
    if (!r) throw Error("Rational: int64 overflow");
    *this = *r;
  }

  constexpr std::int64_t num() const noexcept { return num_; }
  constexpr std::int64_t den() const noexcept { return den_; }
  constexpr bool is_integer() const noexcept { return den_ == 1; }
  double to_double() const noexcept {
    return static_cast<double>(num_) / static_cast<double>(den_);
  }
  /// "24", "-2", "8/3".
  std::string to_string() const {
    return den_ == 1 ? std::to_string(num_) : fmt::format("{}/{}", num_, den_);
  }

  /// Parses "7", "-2", "8/3" (also "-8/3"; "4/2" is normalised to 2). No spaces, no '+',
  /// no decimals. Returns nullopt and sets *why when the text is not such a number.
  static std::optional<Rational> parse(std::string_view text, std::string* why = nullptr) {
    auto fail = [&](const char* reason) -> std::optional<Rational> {
      if (why) *why = fmt::format("'{}' {}", text, reason);
      return std::nullopt;
    };
    std::string_view s = text;
    const bool negative = !s.empty() && s.front() == '-';
    if (negative) s.remove_prefix(1);
    const auto slash = s.find('/');
    const std::string_view num_text = s.substr(0, slash);
    const std::string_view den_text =
        slash == std::string_view::npos ? std::string_view("1") : s.substr(slash + 1);
    if (num_text.empty() || den_text.empty() ||
        !std::all_of(num_text.begin(), num_text.end(), detail::is_digit) ||
        !std::all_of(den_text.begin(), den_text.end(), detail::is_digit))
      return fail("is not a number");
    const auto n = detail::parse_uint(num_text);
    const auto d = detail::parse_uint(den_text);
    if (!n || !d) return fail("is too large");
    if (*d == 0) return fail("has a zero denominator");
    return make(negative ? -static_cast<__int128_t>(*n) : static_cast<__int128_t>(*n), *d);
  }

  /// a op b for op in + - * /; nullopt on division by zero or int64 overflow (with *why set
  /// to "division by zero" or "arithmetic overflow" when given).
  friend std::optional<Rational> apply(char op, const Rational& a, const Rational& b,
                                       std::string* why = nullptr) {
    const __int128_t an = a.num_, ad = a.den_, bn = b.num_, bd = b.den_;
    std::optional<Rational> r;
    switch (op) {
      case '+': r = make(an * bd + bn * ad, ad * bd); break;
      case '-': r = make(an * bd - bn * ad, ad * bd); break;
      case '*': r = make(an * bn, ad * bd); break;
      case '/':
        if (bn == 0) {
          if (why) *why = "division by zero";
          return std::nullopt;
        }
        r = make(an * bd, ad * bn);
        break;
      default:
        if (why) *why = fmt::format("unknown operator '{}'", op);
        return std::nullopt;
    }
    if (!r && why) *why = "arithmetic overflow";
    return r;
  }

  friend Rational operator+(const Rational& a, const Rational& b) { return checked(a, '+', b); }
  friend Rational operator-(const Rational& a, const Rational& b) { return checked(a, '-', b); }
  friend Rational operator*(const Rational& a, const Rational& b) { return checked(a, '*', b); }
  friend Rational operator/(const Rational& a, const Rational& b) { return checked(a, '/', b); }
  Rational operator-() const noexcept { return Rational(Raw{}, -num_, den_); }
  Rational& operator+=(const Rational& o) { return *this = *this + o; }
  Rational& operator-=(const Rational& o) { return *this = *this - o; }
  Rational& operator*=(const Rational& o) { return *this = *this * o; }
  Rational& operator/=(const Rational& o) { return *this = *this / o; }

  friend constexpr bool operator==(const Rational&, const Rational&) noexcept = default;
  friend std::strong_ordering operator<=>(const Rational& a, const Rational& b) noexcept {
    // Denominators are positive, so cross-multiplying keeps the order; fits in 127 bits.
    return static_cast<__int128_t>(a.num_) * b.den_ <=> static_cast<__int128_t>(b.num_) * a.den_;
  }
  friend std::ostream& operator<<(std::ostream& os, const Rational& r) {
    return os << r.to_string();
  }

 private:
  struct Raw {};
  constexpr Rational(Raw, std::int64_t n, std::int64_t d) noexcept : num_(n), den_(d) {}

  /// Normalises n/d; nullopt when d == 0 or the reduced parts do not fit. |n|, |d| < 2^127.
  static std::optional<Rational> make(__int128_t n, __int128_t d) noexcept {
    if (d == 0) return std::nullopt;
    if (d < 0) {
      n = -n;
      d = -d;
    }
    const __uint128_t an = n < 0 ? -static_cast<__uint128_t>(n) : static_cast<__uint128_t>(n);
    const __uint128_t g = detail::gcd_u128(an, static_cast<__uint128_t>(d));
    const __uint128_t rn = an / g, rd = static_cast<__uint128_t>(d) / g;
    constexpr auto kMax = static_cast<__uint128_t>(std::numeric_limits<std::int64_t>::max());
    if (rn > kMax || rd > kMax) return std::nullopt;
    const auto sn = static_cast<std::int64_t>(rn);
    return Rational(Raw{}, n < 0 ? -sn : sn, static_cast<std::int64_t>(rd));
  }
  static Rational checked(const Rational& a, char op, const Rational& b) {
    std::string why;
    auto r = apply(op, a, b, &why);
    if (r) return *r;
    if (op == '/' && b.num_ == 0) throw InvalidArgument("Rational: division by zero");
    throw Error(fmt::format("Rational: int64 overflow in {} {} {}", a.to_string(), op,
                            b.to_string()));
  }

  std::int64_t num_ = 0;
  std::int64_t den_ = 1;
};

/// Hash of a Rational (for unordered containers).
struct RationalHash {
  std::size_t operator()(const Rational& r) const noexcept {
    return static_cast<std::size_t>(splitmix64(static_cast<std::uint64_t>(r.num()) ^
                                               splitmix64(static_cast<std::uint64_t>(r.den()))));
  }
};

/// The puzzle's numbers as rationals.
inline std::vector<Rational> to_rationals(const std::vector<int>& numbers) {
  return {numbers.begin(), numbers.end()};
}

/// "4 5 6 10": the numbers' to_string() joined by single spaces.
inline std::string join_numbers(std::span<const Rational> numbers) {
  std::string out;
  for (const auto& r : numbers) {
    if (!out.empty()) out.push_back(' ');
    out.append(r.to_string());
  }
  return out;
}

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

// ---- the programmatic generator -----------------------------------------------------------

/// Parameters of ProgrammaticGenerator.
struct GeneratorParams {
  /// Probability in [0, 1] that each proposed step is corrupted the way a weak model errs: a
  /// move gets a wrong result, a number that is not left, or a wrong left list; an answer gets
  /// a changed operator. 0 is a perfect proposer.
  double error_rate = 0.0;
  /// true: the candidates of one request are distinct moves drawn without replacement (so at
  /// most as many as there are legal moves); false: drawn with replacement (repeats happen).
  bool propose_distinct = true;
  /// The largest batch expand() accepts; the core splits larger calls (0 = unlimited).
  std::size_t max_batch_size = 0;

  void validate() const {
    if (!(error_rate >= 0.0 && error_rate <= 1.0))
      throw InvalidArgument(fmt::format("error_rate: must be in [0, 1], got {}", error_rate));
  }
};

/// A Generator that proposes ToT steps by enumerating moves, like ToT's propose prompt with
/// an LLM that knows arithmetic (and, with error_rate > 0, sometimes errs). The model trusts
/// its own text: the numbers it works from are the left list of the prefix's last step (the
/// puzzle's numbers if the prefix is empty or its last step does not parse). From two or more
/// numbers it samples legal moves uniformly (Rng seeded from the request's seed, or the first
/// moves in canonical order when greedy); from one number it writes "Answer: <expr> = 24"
/// with <expr> substituted back from the prefix's steps. A prefix ending in an answer gets no
/// proposal, and neither does one whose last step leaves more numbers than the puzzle has (each
/// of this generator's steps, right or wrong, leaves one number fewer; without this rule
/// a crafted step with hundreds of numbers made propose() take seconds and gigabytes, found
/// by fuzz_game24). Steps are ASCII and a token is a character: num_tokens == text.size().
class ProgrammaticGenerator {
 public:
  explicit ProgrammaticGenerator(GeneratorParams params = {}) : params_(params) {
    params_.validate();
  }

  const GeneratorParams& params() const noexcept { return params_; }
  std::string name() const { return "game24-programmatic"; }
  std::size_t max_batch_size() const noexcept { return params_.max_batch_size; }

  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> batch) const {
    std::vector<std::vector<Step>> out;
    out.reserve(batch.size());
    for (const auto& request : batch) out.push_back(propose(request));
    return out;
  }

  /// The proposals for one request (what expand() returns for it).
  std::vector<Step> propose(const ExpandRequest& request) const {
    if (request.problem == nullptr) throw InvalidArgument("ExpandRequest.problem: null");
    if (request.num_candidates < 1)
      throw InvalidArgument(fmt::format("ExpandRequest.num_candidates: must be >= 1, got {}",
                                        request.num_candidates));
    const auto puzzle = parse_puzzle(request.problem->text);
    const TrajectoryView& prefix = request.prefix;
    std::vector<std::string_view> texts;
    texts.reserve(prefix.size());
    for (std::size_t i = 0; i < prefix.size(); ++i) texts.push_back(prefix.text(i));
    if (!texts.empty() && is_answer_step(texts.back())) return {};

    std::vector<Rational> state;
    if (!texts.empty()) {
      if (auto last = parse_step(texts.back())) state = std::move(last->left);
    }
    if (state.empty()) state = to_rationals(puzzle);
    if (state.size() > puzzle.size()) return {};  // unreachable (see the class comment)

    Rng rng(request.seed);
    const double e = params_.error_rate;
    std::vector<Step> steps;
    if (state.size() >= 2) {
      const auto moves = legal_moves(state);
      if (moves.empty()) return {};
      const auto picks = pick(moves.size(), request, rng);
      const double base = -std::log(static_cast<double>(moves.size()));
      for (const std::size_t k : picks) {
        std::string text;
        double logprob = base;
        if (e > 0.0 && rng.uniform() < e) {
          logprob += std::log(e);
          text = corrupt_move(moves[k], state, rng, logprob);
        } else {
          logprob += std::log1p(-e);
          text = moves[k].to_string();
        }
        steps.push_back(make_step(std::move(text), logprob, FinishReason::StepEnd, request));
      }
    } else {
      const std::string expr = substitute_steps(puzzle, texts);
      for (std::size_t n = pick(1, request, rng).size(); n > 0; --n) {
        std::string text = expr;
        double logprob = 0.0;
        if (e > 0.0 && rng.uniform() < e) {
          logprob += std::log(e);
          text = corrupt_expression(expr, rng, logprob);
        } else {
          logprob += std::log1p(-e);
        }
        steps.push_back(make_step(fmt::format("Answer: {} = 24", text), logprob,
                                  FinishReason::FinalAnswer, request));
      }
    }
    return steps;
  }

 private:
  static constexpr std::array<std::int64_t, 4> kDeltas{-2, -1, 1, 2};

  /// Indices of the chosen moves among m (see the class comment).
  std::vector<std::size_t> pick(std::size_t m, const ExpandRequest& request, Rng& rng) const {
    const auto n = static_cast<std::size_t>(request.num_candidates);
    std::vector<std::size_t> idx;
    if (request.greedy || params_.propose_distinct) {
      idx.resize(m);
      std::iota(idx.begin(), idx.end(), std::size_t{0});
      const std::size_t k = std::min(n, m);
      if (!request.greedy) {
        for (std::size_t t = 0; t < k; ++t) std::swap(idx[t], idx[t + rng.below(m - t)]);
      }
      idx.resize(k);
    } else {
      idx.reserve(n);
      for (std::size_t t = 0; t < n; ++t) idx.push_back(rng.below(m));
    }
    return idx;
  }

  /// A ruined version of a legal move; adds the log-probability of the choice to logprob.
  static std::string corrupt_move(const ParsedStep& move, const std::vector<Rational>& state,
                                  Rng& rng, double& logprob) {
    // r + d, or -r in the (absurd) case that overflows; either way a different number.
    auto nudge = [&rng](const Rational& r) {
      return apply('+', r, Rational(kDeltas[rng.below(kDeltas.size())])).value_or(-r);
    };
    // The move's left list with its result c replaced by c2, sorted.
    auto left_with = [&](const Rational& c2) {
      std::vector<Rational> left = move.left;
      if (auto it = std::find(left.begin(), left.end(), move.c); it != left.end()) *it = c2;
      std::sort(left.begin(), left.end());
      return left;
    };
    logprob -= std::log(3.0);
    const auto kind = rng.below(3);
    if (kind == 1) {  // a number that is not in the state
      std::vector<Rational> absent;
      for (std::int64_t v = 1; v <= 13; ++v)
        if (std::find(state.begin(), state.end(), Rational(v)) == state.end()) absent.push_back(v);
      const bool second = rng.below(2) == 1;
      if (!absent.empty()) {
        const Rational bad = absent[rng.below(absent.size())];
        const Rational& x = second ? move.a : bad;
        const Rational& y = second ? bad : move.b;
        if (const auto c2 = apply(move.op, x, y)) {
          logprob -= std::log(2.0) + std::log(static_cast<double>(absent.size()));
          return format_step(x, move.op, y, *c2, left_with(*c2));
        }
      }
    }
    if (kind == 2) {  // a wrong left list
      std::vector<Rational> left = move.left;
      const auto k = rng.below(left.size());
      left[k] = nudge(left[k]);
      std::sort(left.begin(), left.end());
      logprob -= std::log(static_cast<double>(move.left.size() * kDeltas.size()));
      return format_step(move.a, move.op, move.b, move.c, left);
    }
    // a wrong result, off by a small nonzero integer (also the fallback of kind 1)
    const Rational c2 = nudge(move.c);
    logprob -= std::log(static_cast<double>(kDeltas.size()));
    return format_step(move.a, move.op, move.b, c2, left_with(c2));
  }

  /// The expression with one operator changed so that it no longer makes 24 (or, if no
  /// change does that, its first number increased by one); adds the choice's log-probability.
  static std::string corrupt_expression(const std::string& expr, Rng& rng, double& logprob) {
    std::vector<std::string> options;
    for (std::size_t p = 0; p < expr.size(); ++p) {
      if (std::string_view("+-*/").find(expr[p]) == std::string_view::npos) continue;
      for (const char op : {'+', '-', '*', '/'}) {
        if (op == expr[p]) continue;
        std::string candidate = expr;
        candidate[p] = op;
        const auto v = eval_expression(candidate);
        if (!v || *v != 24) options.push_back(std::move(candidate));
      }
    }
    if (!options.empty()) {
      logprob -= std::log(static_cast<double>(options.size()));
      return options[rng.below(options.size())];
    }
    const auto start = std::find_if(expr.begin(), expr.end(), detail::is_digit);
    const auto end = std::find_if_not(start, expr.end(), detail::is_digit);
    if (start == end) return expr + " + 1";
    const auto v =
        detail::parse_uint(std::string_view(&*start, static_cast<std::size_t>(end - start)));
    return std::string(expr.begin(), start) + std::to_string(v.value_or(0) + 1) +
           std::string(end, expr.end());
  }

  static Step make_step(std::string text, double logprob, FinishReason finish,
                        const ExpandRequest& request) {
    if (request.max_new_tokens > 0 &&
        text.size() > static_cast<std::size_t>(request.max_new_tokens)) {
      text.resize(static_cast<std::size_t>(request.max_new_tokens));
      finish = FinishReason::Length;
    }
    Step s;
    s.num_tokens = static_cast<std::int32_t>(text.size());
    s.text = std::move(text);
    s.logprob = logprob;
    s.finish = finish;
    return s;
  }

  GeneratorParams params_;
};

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

// ---- dataset ------------------------------------------------------------------------------
namespace detail {

/// Splits one CSV line; handles "quoted, fields" with "" escapes.
inline std::vector<std::string> split_csv_line(std::string_view line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back().push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back().push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back().push_back(c);
    }
  }
  return fields;
}

}  // namespace detail

/// Parses a rank range: "901-1000" or "5" (a single rank), 1 <= first <= last. Throws
/// InvalidArgument naming "--ranks".
inline std::pair<int, int> parse_ranks(std::string_view text) {
  const std::string_view s = detail::trim(text);
  auto fail = [&]() -> std::pair<int, int> {
    throw InvalidArgument(fmt::format(
        "--ranks: expected \"N\" or \"A-B\" with 1 <= A <= B, got \"{}\"", text));
  };
  auto number = [](std::string_view t) -> std::optional<int> {
    const auto v = detail::parse_uint(detail::trim(t));
    if (!v || *v < 1 || *v > std::numeric_limits<int>::max()) return std::nullopt;
    return static_cast<int>(*v);
  };
  const auto dash = s.find('-');
  const auto lo = number(s.substr(0, dash));
  const auto hi = dash == std::string_view::npos ? lo : number(s.substr(dash + 1));
  if (!lo || !hi || *lo > *hi) return fail();
  return {*lo, *hi};
}

/// Loads the ToT 24.csv (a header row naming a "Puzzles" column and, optionally, a "Rank"
/// column; other columns are ignored). Problem::id is the rank (the 1-based row number
/// without a Rank column), Problem::text the validated puzzle ("4 5 6 10"). `ranks` keeps
/// the rows with first <= rank <= last. Throws IoError when the file cannot be read and
/// ParseError ("path:line: ...") on a malformed row or header.
inline std::vector<Problem> load_csv(const std::string& path,
                                     std::optional<std::pair<int, int>> ranks = std::nullopt) {
  if (ranks && (ranks->first < 1 || ranks->first > ranks->second))
    throw InvalidArgument(fmt::format("ranks: {}-{} is not a range 1 <= first <= last",
                                      ranks->first, ranks->second));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("game24: cannot open \"{}\"", path));
  auto parse_error = [&](std::size_t line_no, const std::string& msg) {
    return ParseError(fmt::format("{}:{}: {}", path, line_no, msg));
  };

  std::string line;
  std::size_t line_no = 1;
  if (!std::getline(in, line)) {
    if (in.bad()) throw IoError(fmt::format("game24: error reading \"{}\"", path));
    throw parse_error(1, "empty file, expected a header row with a \"Puzzles\" column");
  }
  if (line.starts_with("\xEF\xBB\xBF")) line.erase(0, 3);  // UTF-8 byte-order mark
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const auto header = detail::split_csv_line(line);
  std::optional<std::size_t> puzzle_col, rank_col;
  for (std::size_t i = 0; i < header.size(); ++i) {
    const auto name = detail::trim(header[i]);
    if (name == "Puzzles" && !puzzle_col) puzzle_col = i;
    if (name == "Rank" && !rank_col) rank_col = i;
  }
  if (!puzzle_col) throw parse_error(1, "the header has no \"Puzzles\" column");
  const std::size_t needed = std::max(*puzzle_col, rank_col.value_or(0)) + 1;

  std::vector<Problem> problems;
  int row = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (detail::trim(line).empty()) continue;
    ++row;
    const auto fields = detail::split_csv_line(line);
    if (fields.size() < needed)
      throw parse_error(line_no, fmt::format("expected at least {} columns, got {}", needed,
                                             fields.size()));
    int rank = row;
    if (rank_col) {
      const auto r = detail::parse_uint(detail::trim(fields[*rank_col]));
      if (!r || *r < 1 || *r > std::numeric_limits<int>::max())
        throw parse_error(line_no, fmt::format("Rank '{}' is not a positive integer",
                                               detail::trim(fields[*rank_col])));
      rank = static_cast<int>(*r);
    }
    std::vector<int> puzzle;
    try {
      puzzle = parse_puzzle(fields[*puzzle_col]);
    } catch (const ParseError& e) {
      throw parse_error(line_no, e.what());
    }
    if (ranks && (rank < ranks->first || rank > ranks->second)) continue;
    Problem p;
    p.id = std::to_string(rank);
    p.text = fmt::format("{}", fmt::join(puzzle, " "));
    problems.push_back(std::move(p));
  }
  if (in.bad()) throw IoError(fmt::format("game24: error reading \"{}\"", path));
  return problems;
}

static_assert(Task<Game24Task> && CheckedTask<Game24Task>);
static_assert(Generator<ProgrammaticGenerator>);
static_assert(StepVerifier<OracleStepVerifier>);
static_assert(OutcomeVerifier<OracleOutcomeVerifier>);

}  // namespace qstar::game24
