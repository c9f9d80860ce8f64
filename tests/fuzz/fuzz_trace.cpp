// libFuzzer target: the JSON parser (include/qstar/core/json.hpp) and the trace JSONL reader
// (include/qstar/core/trace.hpp).
//
// Input: the bytes of a JSONL trace (one record per line; blank lines skipped).
//
// Oracles (beyond "no crash, no sanitizer report, only qstar::Error escapes"):
//  * JSON: a document that parses dumps to text that parses back to an equal Value and
//    dumps to the same bytes again;
//  * traces: a record that reads writes a line that reads back and writes the same bytes
//    (write, read, write is byte-identical), and trace_to_json() dumps to that same line;
//  * read_trace over the whole input agrees with read_trace_line line by line.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "qstar/core/json.hpp"
#include "qstar/core/trace.hpp"
#include "qstar/error.hpp"

namespace json = qstar::json;
using qstar_fuzz::shown;

namespace {

void check_json(std::string_view text) {
  json::Value v;
  try {
    v = json::parse(text, "fuzz");
  } catch (const qstar::ParseError&) {
    return;
  }
  const std::string once = json::dump(v);
  json::Value back;
  try {
    back = json::parse(once, "dump");
  } catch (const qstar::ParseError& e) {
    FUZZ_CHECK(false, "dump '%s' does not parse: %s", shown(once).c_str(), e.what());
  }
  FUZZ_CHECK(back == v, "dump '%s' parses to a different value", shown(once).c_str());
  FUZZ_CHECK(json::dump(back) == once, "dump is not stable for '%s'", shown(once).c_str());
}

/// Reads one line; on success checks the round trip. Returns whether it read.
bool check_trace_line(std::string_view line) {
  qstar::TraceRecord rec;
  try {
    rec = qstar::read_trace_line(line, "fuzz");
  } catch (const qstar::ParseError&) {
    return false;
  }
  const std::string w1 = qstar::write_trace_line(rec);
  FUZZ_CHECK(json::dump(qstar::trace_to_json(rec)) == w1, "trace_to_json differs from write_trace_line");
  qstar::TraceRecord rec2;
  try {
    rec2 = qstar::read_trace_line(w1, "rewritten");
  } catch (const qstar::ParseError& e) {
    FUZZ_CHECK(false, "a written trace line does not read back: %s\n  line: %s", e.what(), shown(w1).c_str());
  }
  const std::string w2 = qstar::write_trace_line(rec2);
  FUZZ_CHECK(w1 == w2, "write, read, write is not byte-identical:\n  %s\n  %s", shown(w1).c_str(),
             shown(w2).c_str());
  FUZZ_CHECK(rec2.tree.size() == rec.tree.size(), "node count changed");
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 65536) return -1;
  const std::string_view text = qstar_fuzz::as_view(data, size);
  check_json(text);

  std::size_t ok_lines = 0, lines = 0;
  bool all_ok = true;
  for (const auto& line : qstar_fuzz::split(text, '\n')) {
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    ++lines;
    if (line.size() != text.size()) check_json(line);
    if (check_trace_line(line)) ++ok_lines;
    else all_ok = false;
  }

  std::istringstream is{std::string(text)};
  try {
    const auto recs = qstar::read_trace(is, "fuzz");
    FUZZ_CHECK(all_ok && recs.size() == lines, "read_trace read %zu records where the lines give %zu of %zu",
               recs.size(), ok_lines, lines);
  } catch (const qstar::ParseError&) {
    FUZZ_CHECK(!all_ok, "read_trace failed although every line reads");
  }
  return 0;
}
