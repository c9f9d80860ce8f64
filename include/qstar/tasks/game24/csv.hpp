// Game of 24: the ToT 24.csv loader (load_csv) and rank ranges (parse_ranks).
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

}  // namespace qstar::game24
