// `qstar task check` and `qstar task extract`: the task's answer grader and extractor over
// JSONL, for scripts and evaluation pipelines. One JSON object per input line, one per output
// line, in order. FILE "-" reads standard input. A malformed line (bad JSON, a missing or
// ill-typed field, a line over 1 MiB) is an error naming FILE:line, exit 2, before anything
// is written.
//
//   qstar task check --task math --pairs FILE.jsonl [--mode lenient|strict]
//     in:  {"gold": "...", "answer": "..."}   (gold/answer: strings or numbers; answer null = none)
//     out: {"correct": true|false}
//   qstar task extract --task math --texts FILE.jsonl
//     in:  {"text": "..."}                      (a whole solution)
//     out: {"answer": "..." | null}
#include <algorithm>
#include <fstream>
#include <iostream>

#include "app/app.hpp"

namespace qstar::cli {

namespace {

constexpr std::size_t kMaxLineBytes = std::size_t{1} << 20;

constexpr const char* kTaskUsage = R"(usage: qstar task check --task NAME --pairs FILE.jsonl [--mode MODE]
       qstar task extract --task NAME --texts FILE.jsonl

  check    grades each line {"gold": ..., "answer": ...} with the task's grader and writes
           {"correct": true|false} per line, in order (--mode: the task's grading modes,
           for math lenient (default) or strict)
  extract  writes {"answer": "..." | null} for each line {"text": "..."} (a whole solution):
           for math, the last brace-matched \boxed{}/\fbox{}, else "The answer is", else "####"
  FILE "-" reads standard input.
)";

/// Every line of `path` ("-": stdin) parsed as a JSON object; ParseError "path:line: ...".
std::vector<json::Value> read_jsonl(const std::string& path, std::string_view flag) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) throw IoError(fmt::format("--{}: cannot open '{}'", flag, path));
    in = &file;
  }
  std::vector<json::Value> out;
  std::string line;
  std::size_t no = 0;
  while (std::getline(*in, line)) {
    ++no;
    if (line.size() > kMaxLineBytes)
      throw ParseError(fmt::format("{}:{}: line of {} bytes exceeds {} bytes", path, no, line.size(), kMaxLineBytes));
    bool blank = true;
    for (char c : line) blank = blank && (c == ' ' || c == '\t' || c == '\r');
    if (blank) throw ParseError(fmt::format("{}:{}: empty line (one JSON object per line)", path, no));
    json::Value v;
    try {
      v = json::parse(line, "jsonl");
    } catch (const ParseError& e) {
      throw ParseError(fmt::format("{}:{}: {}", path, no, e.what()));
    }
    if (!v.is_object())
      throw ParseError(fmt::format("{}:{}: expected a JSON object, got {}", path, no, json::type_name(v.type())));
    out.push_back(std::move(v));
  }
  if (in->bad()) throw IoError(fmt::format("--{}: reading '{}' failed", flag, path));
  return out;
}

/// A field as text: a string as it is, a number as written; nullopt for null (when allowed).
std::optional<std::string> text_field(const json::Value& o, std::string_view key, bool null_ok, const std::string& where) {
  const json::Value* v = o.find(key);
  if (v == nullptr) throw ParseError(fmt::format("{}: no \"{}\" field", where, key));
  if (v->is_string()) return v->as_string();
  if (v->is_integer()) return fmt::format("{}", v->as_int());
  if (v->is_double()) return fmt::format("{}", v->as_double());
  if (v->is_null() && null_ok) return std::nullopt;
  throw ParseError(fmt::format("{}: \"{}\": expected a string{}, got {}", where, key, null_ok ? ", a number or null" : " or a number",
                               json::type_name(v->type())));
}

}  // namespace

int cmd_task(const std::vector<std::string>& args, std::ostream& out) {
  if (args.size() < 2) throw UsageError("task: give a subcommand, check or extract (qstar task --help)");
  if (args[1] == "--help" || args[1] == "help") {
    out << kTaskUsage;
    return 0;
  }
  const std::string sub = args[1];
  if (sub != "check" && sub != "extract")
    throw UsageError(fmt::format("task: unknown subcommand '{}' (check or extract)", sub));
  const Args a(args, 2, "task " + sub);
  if (a.has("help")) {
    out << kTaskUsage;
    return 0;
  }
  if (!a.positional().empty()) throw UsageError(fmt::format("task {}: unexpected argument '{}'", sub, a.positional()[0]));
  const TaskEntry& entry = task_of(a);
  if (sub == "check") {
    if (!entry.check_answer || entry.check_modes.empty())
      throw UsageError(fmt::format("task check: task '{}' has no answer grader", entry.name));
    const auto pairs = a.get("pairs");
    if (!pairs) throw UsageError("task check: --pairs FILE.jsonl is required");
    const std::string mode = a.get("mode").value_or(entry.check_modes.front());
    if (std::find(entry.check_modes.begin(), entry.check_modes.end(), mode) == entry.check_modes.end())
      throw UsageError(fmt::format("--mode: '{}' is not one of {}", mode, fmt::join(entry.check_modes, ", ")));
    const auto lines = read_jsonl(*pairs, "pairs");
    std::vector<std::pair<std::string, std::optional<std::string>>> items;
    items.reserve(lines.size());
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const std::string where = fmt::format("{}:{}", *pairs, i + 1);
      auto gold = text_field(lines[i], "gold", false, where);
      items.emplace_back(std::move(*gold), text_field(lines[i], "answer", true, where));
    }
    std::string buf;
    for (const auto& [gold, answer] : items) {
      const bool ok = answer.has_value() && entry.check_answer(gold, *answer, mode);
      buf += ok ? "{\"correct\":true}\n" : "{\"correct\":false}\n";
    }
    out << buf;
    return 0;
  }
  if (a.has("mode")) throw UsageError("--mode applies only to task check");
  if (!entry.extract_text) throw UsageError(fmt::format("task extract: task '{}' has no answer extractor", entry.name));
  const auto texts = a.get("texts");
  if (!texts) throw UsageError("task extract: --texts FILE.jsonl is required");
  const auto lines = read_jsonl(*texts, "texts");
  std::vector<std::string> solutions;
  solutions.reserve(lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i)
    solutions.push_back(*text_field(lines[i], "text", false, fmt::format("{}:{}", *texts, i + 1)));
  std::string buf;
  for (const auto& s : solutions) {
    json::Value o = json::Value::object();
    const auto ans = entry.extract_text(s);
    o.set("answer", ans ? json::Value(*ans) : json::Value());
    buf += json::dump(o) + "\n";
  }
  out << buf;
  return 0;
}

}  // namespace qstar::cli
