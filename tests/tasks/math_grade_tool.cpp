// A tiny grader driver for tests/python/test_math_grader_sympy.py (not installed).
// stdin: JSONL, one {"gold": "...", "answer": "...", "mode": "lenient"|"strict"} per line
// (mode optional). stdout: one {"correct": true|false, "gold_key": "...", "answer_key": "..."}
// per line, in order. With `extract` as argument: {"text": "..."} in, {"answer": ...|null} out.
#include <iostream>
#include <string>

#include "qstar/core/json.hpp"
#include "qstar/tasks/math/grader.hpp"

int main(int argc, char** argv) {
  namespace json = qstar::json;
  const bool extract = argc > 1 && std::string(argv[1]) == "extract";
  std::string line;
  std::size_t n = 0;
  try {
    while (std::getline(std::cin, line)) {
      ++n;
      if (line.empty()) continue;
      const json::Value v = json::parse(line, "stdin line " + std::to_string(n));
      json::Object out;
      if (extract) {
        const auto a = qstar::math::extract_answer(v.get_string("text"));
        out.emplace_back("answer", a ? json::Value(*a) : json::Value());
      } else {
        const auto* m = v.find("mode");
        const auto mode = m && m->as_string() == "strict" ? qstar::math::GradeMode::Strict
                                                          : qstar::math::GradeMode::Lenient;
        const auto& g = v.get_string("gold");
        const auto& a = v.get_string("answer");
        out.emplace_back("correct", json::Value(qstar::math::answers_equal(g, a, mode)));
        out.emplace_back("gold_key", json::Value(qstar::math::canonical_key(g)));
        out.emplace_back("answer_key", json::Value(qstar::math::canonical_key(a)));
      }
      std::cout << json::dump(json::Value(std::move(out))) << '\n';
    }
  } catch (const qstar::Error& e) {
    std::cerr << "math_grade_tool: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
