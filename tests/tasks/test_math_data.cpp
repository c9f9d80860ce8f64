// The math JSONL loader (qstar/tasks/math/data.hpp) on the shipped GSM8K and MATH-500 files
// (counts and values checked with Python's json module) and on malformed files.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "qstar/tasks/math/data.hpp"

using namespace qstar;

namespace {

std::string data_file(const std::string& name) { return std::string(QSTAR_MATH_DATA_DIR) + "/" + name; }

/// A temporary JSONL file with `text`, removed at scope exit.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& text) {
    path = (std::filesystem::temp_directory_path() /
            ("qstar_math_data_" + std::to_string(reinterpret_cast<std::uintptr_t>(this)) + ".jsonl"))
               .string();
    std::ofstream(path, std::ios::binary) << text;
  }
  ~TempFile() { std::remove(path.c_str()); }
};

}  // namespace

TEST_CASE("math data: GSM8K test and train, gold after ####") {
  const auto test = math::load_jsonl(data_file("gsm8k_test.jsonl"));
  REQUIRE(test.size() == 1319);
  CHECK(test[0].id == "1");
  CHECK(test[0].text.rfind("Janet\u2019s ducks lay 16 eggs per day.", 0) == 0);
  REQUIRE(test[0].gold.has_value());
  CHECK(*test[0].gold == "18");
  CHECK(*test[1].gold == "3");
  CHECK(*test[2].gold == "70000");
  CHECK(*test.back().gold == "14");
  CHECK(math::load_jsonl(data_file("gsm8k_train.jsonl")).size() == 7473);
}

TEST_CASE("math data: MATH-500 fields, ranks, limit, level and subject filters") {
  const auto all = math::load_jsonl(data_file("math500_test.jsonl"));
  REQUIRE(all.size() == 500);
  CHECK(all[0].id == "test/precalculus/807.json");
  CHECK(*all[0].gold == "\\left( 3, \\frac{\\pi}{2} \\right)");
  CHECK(*all[1].gold == "p - q");
  CHECK(*all[2].gold == "\\frac{14}{3}");
  math::DataParams p;
  p.levels = {5};
  CHECK(math::load_jsonl(data_file("math500_test.jsonl"), p).size() == 134);
  p.levels = {1, 2};
  CHECK(math::load_jsonl(data_file("math500_test.jsonl"), p).size() == 133);
  p.levels = {5};
  p.subjects = {"algebra"};  // case-insensitive, exact otherwise (not "Intermediate Algebra")
  const auto l5 = math::load_jsonl(data_file("math500_test.jsonl"), p);
  REQUIRE(l5.size() == 30);
  CHECK(l5[0].id == "test/algebra/1837.json");
  p.limit = 7;
  CHECK(math::load_jsonl(data_file("math500_test.jsonl"), p).size() == 7);
  math::DataParams r;
  r.ranks = std::pair{2, 3};
  const auto two = math::load_jsonl(data_file("math500_test.jsonl"), r);
  REQUIRE(two.size() == 2);
  CHECK(*two[0].gold == "p - q");
  CHECK(*two[1].gold == "\\frac{14}{3}");
  r.ranks = std::pair{500, 600};
  CHECK(math::load_jsonl(data_file("math500_test.jsonl"), r).size() == 1);
}

TEST_CASE("math data: custom fields, numbers, levels as text, gold parsing") {
  TempFile f(
      "{\"Problem\": \"Find x.\", \"Answer\": 204, \"level\": \"Level 3\", \"subject\": \"AIME\"}\n"
      "\n"
      "{\"Problem\": \"Find y.\", \"Answer\": \"  17 \", \"level\": 4}\n"
      "{\"Problem\": \"Find z.\"}\n");
  math::DataParams p;
  p.question_field = "Problem";
  p.answer_field = "Answer";
  const auto ps = math::load_jsonl(f.path, p);
  REQUIRE(ps.size() == 3);
  CHECK(ps[0].id == "1");
  CHECK(ps[0].text == "Find x.");
  CHECK(*ps[0].gold == "204");
  CHECK(*ps[1].gold == "17");
  CHECK(ps[1].id == "2");  // the blank line is no record
  CHECK(!ps[2].gold.has_value());
  p.levels = {3};
  REQUIRE(math::load_jsonl(f.path, p).size() == 1);
  p.levels.clear();
  p.subjects = {"aime"};
  CHECK(math::load_jsonl(f.path, p).size() == 1);
  p.subjects.clear();
  p.require_answer = true;
  CHECK_THROWS_WITH_AS(math::load_jsonl(f.path, p), doctest::Contains(":4: no \"Answer\" field"), ParseError);
  CHECK(math::gold_from_answer("a #### 1 #### 1,234\n") == "1,234");
  CHECK(math::gold_from_answer(" \\frac{1}{2} ") == "\\frac{1}{2}");
}

TEST_CASE("math data: errors name path:line or the field") {
  CHECK_THROWS_AS(math::load_jsonl("/nonexistent/qstar.jsonl"), IoError);
  {
    TempFile f("{\"question\": \"a\", \"answer\": \"1\"}\n{\"question\": \"b\", \"answer\": \n");
    CHECK_THROWS_WITH_AS(math::load_jsonl(f.path), doctest::Contains(":2:"), ParseError);
  }
  {
    TempFile f("[1, 2]\n");
    CHECK_THROWS_WITH_AS(math::load_jsonl(f.path), doctest::Contains(":1: expected a JSON object"), ParseError);
  }
  {
    TempFile f("{\"text\": \"a\"}\n");
    CHECK_THROWS_WITH_AS(math::load_jsonl(f.path), doctest::Contains("no \"question\" or \"problem\" field"), ParseError);
    math::DataParams p;
    p.question_field = "q";
    CHECK_THROWS_WITH_AS(math::load_jsonl(f.path, p), doctest::Contains("no \"q\" field"), ParseError);
  }
  {
    TempFile f("{\"question\": 3}\n");
    CHECK_THROWS_WITH_AS(math::load_jsonl(f.path), doctest::Contains("\"question\": expected a string"), ParseError);
  }
  {
    TempFile f("{\"question\": \"a\", \"answer\": [1]}\n");
    CHECK_THROWS_WITH_AS(math::load_jsonl(f.path), doctest::Contains("\"answer\": expected a string or a number"),
                         ParseError);
  }
  {
    TempFile f("{\"question\": \"" + std::string(100, 'x') + "\"}\n");
    math::DataParams p;
    p.max_line_bytes = 50;
    CHECK_THROWS_WITH_AS(math::load_jsonl(f.path, p), doctest::Contains(":1: line of"), ParseError);
  }
  math::DataParams bad;
  bad.ranks = std::pair{3, 2};
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("ranks"), InvalidArgument);
  bad = {};
  bad.answer_field = "";
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("answer_field"), InvalidArgument);
}
