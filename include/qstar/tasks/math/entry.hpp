// The math task as a registered task (qstar/tasks/registry.hpp): `--task math`. Its data is
// any JSONL file (load_jsonl; GSM8K and MATH-500 ship in data/math/), with the data options
// --question-field, --answer-field, --limit, --level and --subject; its prompts are rendered
// with the model's chat template when the boundary has one (make_chat_task), else the plain
// template. It ships no generator or verifier of its own: use lm:DIR / http:URL and a PRM.
#pragma once

#include <charconv>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "qstar/tasks/math/data.hpp"
#include "qstar/tasks/math/task.hpp"
#include "qstar/tasks/registry.hpp"

namespace qstar::math {

namespace detail {

/// "a,b,c" -> {"a", "b", "c"} (items trimmed, empty ones dropped).
inline std::vector<std::string> split_commas(std::string_view s) {
  std::vector<std::string> out;
  while (true) {
    const auto comma = s.find(',');
    const auto item = trim_ws(s.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

inline int option_int(std::string_view flag, std::string_view text, int lo, int hi) {
  int v = 0;
  const auto t = trim_ws(text);
  const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || r.ec != std::errc() || r.ptr != t.data() + t.size() || v < lo || v > hi)
    throw InvalidArgument(fmt::format("--{}: '{}' is not an integer in [{}, {}]", flag, text, lo, hi));
  return v;
}

}  // namespace detail

/// DataParams from the data options of the entry (flag names as in TaskEntry::data_options).
inline DataParams data_params_from(std::optional<std::pair<int, int>> ranks, const PluginOptions& o) {
  DataParams p;
  p.ranks = ranks;
  if (auto it = o.find("question-field"); it != o.end()) p.question_field = it->second;
  if (auto it = o.find("answer-field"); it != o.end()) p.answer_field = it->second;
  if (auto it = o.find("limit"); it != o.end()) p.limit = static_cast<std::size_t>(detail::option_int("limit", it->second, 1, 1 << 30));
  if (auto it = o.find("level"); it != o.end())
    for (const auto& l : detail::split_commas(it->second)) p.levels.push_back(detail::option_int("level", l, 0, 1000));
  if (auto it = o.find("subject"); it != o.end()) p.subjects = detail::split_commas(it->second);
  try {
    p.validate();
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(fmt::format("data options: {}", e.what()));
  }
  return p;
}

/// The entry `qstar` and the Python bindings register under the name "math".
inline TaskEntry task_entry() {
  TaskEntry e;
  e.name = "math";
  e.summary = "math word problems (GSM8K, MATH-500, AIME, any JSONL): \\boxed{} answers, exact grader, voting by value";
  e.make_task = [] { return AnyTask(MathTask{}); };
  e.make_chat_task = [](std::function<std::string(const std::vector<std::pair<std::string, std::string>>&)> render) {
    ChatRenderer r = [render = std::move(render)](const std::vector<ChatTurn>& turns) {
      std::vector<std::pair<std::string, std::string>> m;
      m.reserve(turns.size());
      for (const auto& t : turns) m.emplace_back(t.role, t.content);
      return render(m);
    };
    return AnyTask(MathTask(MathParams{}, std::move(r)));
  };
  e.parse_problem = [](const std::string& text) {
    if (detail::trim_ws(text).empty()) throw ParseError("math problem: the question is empty");
    return Problem{"cli", text, std::nullopt};
  };
  e.example = "What is 1/2 + 1/3?";
  e.answer_marker = "";  // the Task decides: a step with a complete \boxed{} answer ends it
  e.step_delimiter = MathParams{}.step_delimiter;
  e.data_options = {"question-field", "answer-field", "limit", "level", "subject"};
  e.load_data = [](const std::string& path, std::optional<std::pair<int, int>> ranks, const PluginOptions& o) {
    return load_jsonl(path, data_params_from(ranks, o));
  };
  e.check_modes = {"lenient", "strict"};
  e.check_answer = [](std::string_view gold, std::string_view answer, std::string_view mode) {
    return answers_equal(gold, answer, grade_mode_from_string(mode, "--mode"));
  };
  e.extract_text = [](std::string_view text) { return extract_answer(text); };
  e.default_data = "math/gsm8k_test.jsonl";
  return e;
}

}  // namespace qstar::math
