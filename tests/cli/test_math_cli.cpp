// The math task on the command line: `qstar task check` / `qstar task extract` (JSONL in,
// JSONL out, in order; errors name FILE:line, exit 2), and the math flags of solve and bench
// (data options, chat templates) with their usage errors. Expected grades are hand-checked.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <sys/wait.h>

#include <qstar/core/json.hpp>

#include "../cli_run.hpp"

namespace {

using cli_test::run;

std::string write_tmp(const std::string& name, const std::string& text) {
  const auto path = (std::filesystem::temp_directory_path() / ("qstar_math_cli_" + name)).string();
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::vector<qstar::json::Value> json_lines(const std::string& out) {
  std::vector<qstar::json::Value> v;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) v.push_back(qstar::json::parse(line));
  return v;
}

std::string data(const std::string& name) { return std::string(QSTAR_MATH_DATA_DIR) + "/" + name; }

}  // namespace

TEST_CASE("qstar task check: one {\"correct\": ...} line per pair, in order, lenient and strict") {
  const auto pairs = write_tmp("pairs.jsonl",
                               "{\"gold\": \"\\\\frac{1}{2}\", \"answer\": \"0.5\"}\n"
                               "{\"gold\": \"18\", \"answer\": \"19\"}\n"
                               "{\"gold\": \"1,234\", \"answer\": \"1234\"}\n"
                               "{\"gold\": 204, \"answer\": \"204\"}\n"
                               "{\"gold\": \"5\", \"answer\": null}\n"
                               "{\"gold\": \"3\\\\sqrt{13}\", \"answer\": \"\\\\sqrt{117}\"}\n"
                               "{\"gold\": \"(1, 2)\", \"answer\": \"(2, 1)\"}\n"
                               "{\"gold\": \"\\\\frac{2}{4}\", \"answer\": \"\\\\frac{1}{2}\"}\n");
  auto r = run({"task", "check", "--task", "math", "--pairs", pairs});
  REQUIRE(r.code == 0);
  CHECK(r.err.empty());
  const auto lines = json_lines(r.out);
  REQUIRE(lines.size() == 8);
  const bool expected[] = {true, false, true, true, false, true, false, true};
  for (std::size_t i = 0; i < lines.size(); ++i) {
    CAPTURE(i);
    CHECK(lines[i].get_bool("correct") == expected[i]);
  }
  CHECK(r.out.rfind("{\"correct\":true}\n{\"correct\":false}\n", 0) == 0);
  auto s = run({"task", "check", "--task", "math", "--pairs", pairs, "--mode", "strict"});
  REQUIRE(s.code == 0);
  REQUIRE(json_lines(s.out).size() == 8);
  CHECK(json_lines(s.out)[0].get_bool("correct"));   // 1/2 = 0.5 exactly in both modes
  CHECK(!json_lines(s.out)[1].get_bool("correct"));
  std::remove(pairs.c_str());
}

TEST_CASE("qstar task extract: the last boxed answer, The answer is, ####, else null") {
  const auto texts = write_tmp("texts.jsonl",
                               "{\"text\": \"First \\\\boxed{1}.\\n\\nSo the answer is \\\\boxed{\\\\frac{1}{2}}.\"}\n"
                               "{\"text\": \"Nested \\\\boxed{\\\\frac{a}{\\\\sqrt{b}}} ok\"}\n"
                               "{\"text\": \"No final answer here.\"}\n"
                               "{\"text\": \"Unbalanced \\\\boxed{\\\\frac{1}{2}\"}\n"
                               "{\"text\": \"She makes 9 * 2 = 18 dollars.\\n#### 18\"}\n"
                               "{\"text\": \"Thus \\\\fbox{42}\"}\n");
  auto r = run({"task", "extract", "--task", "math", "--texts", texts});
  REQUIRE(r.code == 0);
  const auto lines = json_lines(r.out);
  REQUIRE(lines.size() == 6);
  CHECK(lines[0].get_string("answer") == "\\frac{1}{2}");
  CHECK(lines[1].get_string("answer") == "\\frac{a}{\\sqrt{b}}");
  CHECK(lines[2].at("answer").is_null());
  CHECK(lines[3].at("answer").is_null());
  CHECK(lines[4].get_string("answer") == "18");
  CHECK(lines[5].get_string("answer") == "42");
  std::remove(texts.c_str());
}

TEST_CASE("qstar task check/extract: errors name FILE:line or the flag, exit 2, nothing written") {
  const auto bad_json = write_tmp("bad.jsonl", "{\"gold\": \"1\", \"answer\": \"1\"}\n{\"gold\": \"1\", \n");
  auto r = run({"task", "check", "--task", "math", "--pairs", bad_json});
  CHECK(r.code == 2);
  CHECK(r.out.empty());
  CHECK(r.err.find(bad_json + ":2:") != std::string::npos);
  const auto no_gold = write_tmp("nogold.jsonl", "{\"answer\": \"1\"}\n");
  r = run({"task", "check", "--task", "math", "--pairs", no_gold});
  CHECK(r.code == 2);
  CHECK(r.err.find(no_gold + ":1: no \"gold\" field") != std::string::npos);
  const auto arr = write_tmp("arr.jsonl", "{\"gold\": \"1\", \"answer\": [1]}\n");
  r = run({"task", "check", "--task", "math", "--pairs", arr});
  CHECK(r.code == 2);
  CHECK(r.err.find("\"answer\": expected a string") != std::string::npos);
  r = run({"task", "check", "--task", "math", "--pairs", "/nonexistent/p.jsonl"});
  CHECK(r.code == 2);
  CHECK(r.err.find("/nonexistent/p.jsonl") != std::string::npos);
  r = run({"task", "check", "--task", "math", "--pairs", arr, "--mode", "loose"});
  CHECK(r.code == 2);
  CHECK(r.err.find("--mode: 'loose' is not one of lenient, strict") != std::string::npos);
  r = run({"task", "check", "--task", "math"});
  CHECK(r.code == 2);
  CHECK(r.err.find("--pairs") != std::string::npos);
  r = run({"task", "check", "--task", "game24", "--pairs", arr});
  CHECK(r.code == 2);
  CHECK(r.err.find("task 'game24' has no answer grader") != std::string::npos);
  r = run({"task", "extract", "--task", "math", "--texts", no_gold});
  CHECK(r.code == 2);
  CHECK(r.err.find("no \"text\" field") != std::string::npos);
  r = run({"task", "extract", "--task", "math", "--pairs", arr});
  CHECK(r.code == 2);
  CHECK(r.err.find("unknown flag --pairs") != std::string::npos);
  r = run({"task"});
  CHECK(r.code == 2);
  CHECK(r.out.empty());
  CHECK(r.err.find("task: give a subcommand, check or extract") != std::string::npos);
  r = run({"task", "grade"});
  CHECK(r.code == 2);
  CHECK(r.err.find("task: unknown subcommand 'grade'") != std::string::npos);
  r = run({"task", "--help"});
  CHECK(r.code == 0);
  CHECK(r.out.find("qstar task check --task NAME --pairs FILE.jsonl") != std::string::npos);
  for (const auto& p : {bad_json, no_gold, arr}) std::remove(p.c_str());
}

TEST_CASE("qstar task check as a process: reads stdin with --pairs -") {
  const auto pairs = write_tmp("stdin.jsonl", "{\"gold\": \"0.25\", \"answer\": \"\\\\frac14\"}\n{\"gold\": \"2\", \"answer\": \"3\"}\n");
  const auto outp = (std::filesystem::temp_directory_path() / "qstar_math_cli_stdin.out").string();
  const std::string cmd = std::string("'") + QSTAR_CLI_EXE + "' task check --task math --pairs - < '" + pairs + "' > '" + outp + "'";
  const int st = std::system(cmd.c_str());
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
  std::ifstream in(outp);
  std::stringstream ss;
  ss << in.rdbuf();
  CHECK(ss.str() == "{\"correct\":true}\n{\"correct\":false}\n");
  std::remove(pairs.c_str());
  std::remove(outp.c_str());
}

TEST_CASE("solve/bench --task math: data options and chat-template flags, usage errors") {
  // Math ships no generator of its own: a model or server is needed.
  auto r = run({"bench", "--task", "math", "--data", data("gsm8k_test.jsonl"), "--n", "1"});
  CHECK(r.code == 2);
  CHECK(r.err.find("task 'math' has no generator of its own") != std::string::npos);
  r = run({"solve", "--task", "math", "What is 1+1?", "--chat-template", "/nonexistent/t.jinja"});
  CHECK(r.code == 2);
  CHECK(r.err.find("/nonexistent/t.jinja") != std::string::npos);
  r = run({"solve", "--task", "math", "What is 1+1?", "--chat-template", "x.jinja", "--no-chat-template"});
  CHECK(r.code == 2);
  CHECK(r.err.find("exclude each other") != std::string::npos);
  r = run({"solve", "--task", "game24", "4 5 6 10", "--no-chat-template", "--generator", "programmatic", "--verifier",
           "oracle"});
  CHECK(r.code == 2);
  CHECK(r.err.find("task 'game24' has plain prompts only") != std::string::npos);
  r = run({"bench", "--task", "game24", "--data", "x.csv", "--question-field", "q", "--generator", "programmatic",
           "--verifier", "oracle", "--n", "1"});
  CHECK(r.code == 2);
  CHECK(r.err.find("--question-field: task 'game24' reads no such data option") != std::string::npos);
  r = run({"solve", "--task", "math", "   "});
  CHECK(r.code == 2);
  CHECK(r.err.find("the question is empty") != std::string::npos);
  r = run({"solve", "--task", "math", "--level", "1", "What?"});
  CHECK(r.code == 2);
  CHECK(r.err.find("unknown flag --level") != std::string::npos);
  r = run({"help"});
  CHECK(r.out.find("qstar task check --task math --pairs FILE.jsonl") != std::string::npos);
  CHECK(r.out.find("game24, math") != std::string::npos);
}

TEST_CASE("math cli: --prm-chat-template and --prm-system need --verifier prm:PATH") {
  for (const char* flag : {"--prm-chat-template", "--prm-system"}) {
    CAPTURE(flag);
    const auto r = run({"solve", "--task", "math", "What is 1+1?", "--generator", "lm:/nonexistent", "--verifier",
                        "none", flag, "auto"});
    CHECK(r.code == 2);
    CHECK(r.err.find(std::string(flag) + " applies only to --verifier prm:PATH") != std::string::npos);
  }
}
