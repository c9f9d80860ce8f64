// Game of 24: the text helpers the other game24 headers share (whitespace, digits, UTF-8).
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

}  // namespace qstar::game24
