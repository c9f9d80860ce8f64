// Math word-problem data: any JSONL file with one problem per line, with configurable field
// names. GSM8K (`question`, `answer` = a worked solution ending "#### <number>") and MATH-500
// (`problem`, `answer` = the boxed LaTeX answer, `subject`, `level`) load with the defaults;
// AIME, AMC or a user's own set load with DataParams::question_field / answer_field.
//
// Problem::text is the question, Problem::gold the reference answer (after the last "####"
// when the answer field holds one, else the whole field), Problem::id the `unique_id` field
// when present, else the 1-based rank (record number) in the file.
#pragma once

#include <cstddef>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "qstar/core/json.hpp"
#include "qstar/core/types.hpp"
#include "qstar/error.hpp"

namespace qstar::math {

/// What load_jsonl reads and keeps. Every field has a default; validate() throws
/// InvalidArgument naming the field.
struct DataParams {
  /// The question's field; "" = auto: "question" (GSM8K) if the record has it, else "problem"
  /// (MATH). A record without it is a ParseError naming path:line.
  std::string question_field;
  /// The reference answer's field ("answer" for GSM8K and MATH-500). A string or a number;
  /// when it holds "####", the gold is the text after the last "####". A record without it
  /// has no gold (Problem::gold empty) unless require_answer.
  std::string answer_field = "answer";
  /// A record without the answer field is a ParseError (on for benchmarks that grade).
  bool require_answer = false;
  /// The field that names a problem (MATH-500's "unique_id"); absent: the rank.
  std::string id_field = "unique_id";
  /// Keep records whose 1-based rank in the file is in [first, last] (before the filters).
  std::optional<std::pair<int, int>> ranks;
  /// Keep only records whose `level` field (a number, or a string like "Level 5") is one of
  /// these; empty = no filter. Records without a level are dropped when filtering.
  std::vector<int> levels;
  /// Keep only records whose `subject` field equals one of these (case-insensitive); empty =
  /// no filter. Records without a subject are dropped when filtering.
  std::vector<std::string> subjects;
  /// Keep at most this many problems after the filters; 0 = all.
  std::size_t limit = 0;
  /// Longest accepted line in bytes (a larger one is a ParseError): bounds the JSON parser.
  std::size_t max_line_bytes = std::size_t{1} << 20;

  void validate() const {
    if (answer_field.empty()) throw InvalidArgument("answer_field: must not be empty");
    if (ranks && (ranks->first < 1 || ranks->first > ranks->second))
      throw InvalidArgument(fmt::format("ranks: expected 1 <= first <= last, got {}-{}", ranks->first, ranks->second));
    for (int l : levels)
      if (l < 0) throw InvalidArgument(fmt::format("levels: {} is negative", l));
    for (const auto& s : subjects)
      if (s.empty()) throw InvalidArgument("subjects: an empty subject");
    if (max_line_bytes < 2) throw InvalidArgument("max_line_bytes: must be >= 2");
  }
};

namespace detail {

inline std::string_view trim_ws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

inline std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

/// A JSON scalar as text (strings as they are, integers without ".0"); nullopt otherwise.
inline std::optional<std::string> scalar_text(const json::Value& v) {
  if (v.is_string()) return v.as_string();
  if (v.is_integer()) return fmt::format("{}", v.as_int());
  if (v.is_double()) return fmt::format("{}", v.as_double());
  return std::nullopt;
}

/// The level of a record: 3, "3" or "Level 3"; nullopt when it is none of these.
inline std::optional<int> level_of(const json::Value& v) {
  if (v.is_integer()) return static_cast<int>(v.as_int());
  if (!v.is_string()) return std::nullopt;
  std::string_view s = trim_ws(v.as_string());
  if (s.size() > 5 && lower_ascii(s.substr(0, 5)) == "level") s = trim_ws(s.substr(5));
  if (s.empty() || s.size() > 6) return std::nullopt;
  int out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    out = out * 10 + (c - '0');
  }
  return out;
}

}  // namespace detail

/// The gold answer of an answer field: the text after the last "####" (GSM8K) when there is
/// one, else the whole field, trimmed.
inline std::string gold_from_answer(std::string_view answer) {
  if (const auto at = answer.rfind("####"); at != std::string_view::npos) answer = answer.substr(at + 4);
  return std::string(detail::trim_ws(answer));
}

/// The problems of a JSONL file (see the file comment). IoError naming the file when it
/// cannot be read; ParseError "path:line: ..." on a malformed record (bad JSON, not an
/// object, a missing or non-string question, an answer that is no string or number, a line
/// over max_line_bytes); InvalidArgument naming the field of invalid params.
inline std::vector<Problem> load_jsonl(const std::string& path, const DataParams& params = {}) {
  params.validate();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open the data file", path));
  std::vector<Problem> out;
  std::string line;
  std::size_t line_no = 0;
  int rank = 0;
  const auto fail = [&](const std::string& msg) { return ParseError(fmt::format("{}:{}: {}", path, line_no, msg)); };
  while (std::getline(in, line)) {
    ++line_no;
    if (line.size() > params.max_line_bytes)
      throw fail(fmt::format("line of {} bytes exceeds max_line_bytes {}", line.size(), params.max_line_bytes));
    if (detail::trim_ws(line).empty()) continue;
    ++rank;
    if (params.ranks && (rank < params.ranks->first || rank > params.ranks->second)) {
      if (rank > params.ranks->second) break;
      continue;
    }
    json::Value rec;
    try {
      rec = json::parse(line, "jsonl");
    } catch (const ParseError& e) {
      throw fail(e.what());
    }
    if (!rec.is_object()) throw fail(fmt::format("expected a JSON object, got {}", json::type_name(rec.type())));
    std::string qfield = params.question_field;
    if (qfield.empty()) qfield = rec.contains("question") ? "question" : "problem";
    const json::Value* q = rec.find(qfield);
    if (q == nullptr)
      throw fail(params.question_field.empty()
                     ? std::string("no \"question\" or \"problem\" field (set the question field)")
                     : fmt::format("no \"{}\" field (the question field)", qfield));
    if (!q->is_string()) throw fail(fmt::format("\"{}\": expected a string, got {}", qfield, json::type_name(q->type())));
    std::optional<std::string> gold;
    if (const json::Value* a = rec.find(params.answer_field); a != nullptr && !a->is_null()) {
      const auto text = detail::scalar_text(*a);
      if (!text)
        throw fail(fmt::format("\"{}\": expected a string or a number, got {}", params.answer_field,
                               json::type_name(a->type())));
      gold = gold_from_answer(*text);
    } else if (params.require_answer) {
      throw fail(fmt::format("no \"{}\" field (the answer field)", params.answer_field));
    }
    if (!params.levels.empty()) {
      const json::Value* lv = rec.find("level");
      const auto level = lv ? detail::level_of(*lv) : std::nullopt;
      bool keep = false;
      for (int l : params.levels) keep = keep || (level && *level == l);
      if (!keep) continue;
    }
    if (!params.subjects.empty()) {
      const json::Value* sv = rec.find("subject");
      bool keep = false;
      if (sv && sv->is_string())
        for (const auto& s : params.subjects) keep = keep || detail::lower_ascii(sv->as_string()) == detail::lower_ascii(s);
      if (!keep) continue;
    }
    Problem p;
    p.id = fmt::format("{}", rank);
    if (const json::Value* idv = params.id_field.empty() ? nullptr : rec.find(params.id_field))
      if (auto t = detail::scalar_text(*idv)) p.id = *t;
    p.text = q->as_string();
    p.gold = std::move(gold);
    out.push_back(std::move(p));
    if (params.limit != 0 && out.size() >= params.limit) break;
  }
  if (in.bad()) throw IoError(fmt::format("{}: read error", path));
  return out;
}

}  // namespace qstar::math
