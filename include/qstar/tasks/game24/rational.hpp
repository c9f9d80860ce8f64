// Game of 24: exact rational arithmetic (Rational) and number lists.
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
#include "qstar/tasks/game24/text.hpp"

namespace qstar::game24 {

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

}  // namespace qstar::game24
