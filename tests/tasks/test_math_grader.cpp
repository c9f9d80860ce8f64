// The math answer grader (include/qstar/tasks/math/grader.hpp): hand-checked cases for
// every rule and both modes, extraction, limits, and the data's self-consistency
// (MATH-500 gold == the \boxed{} of its own solution; every GSM8K gold parses as a number).
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>

#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/tasks/math/grader.hpp"

using qstar::math::answers_equal;
using qstar::math::canonical_key;
using qstar::math::extract_answer;
using qstar::math::GradeMode;
using qstar::math::GraderLimits;
using qstar::math::normalize_answer;

namespace {
bool lenient(const char* g, const char* a) { return answers_equal(g, a, GradeMode::Lenient); }
bool strict(const char* g, const char* a) { return answers_equal(g, a, GradeMode::Strict); }
}  // namespace

TEST_CASE("extract_answer: boxed, fbox, nesting, unbalanced, phrases, ####") {
  CHECK(extract_answer("so \\boxed{5} and then \\boxed{\\frac{1}{2}}.") == "\\frac{1}{2}");
  CHECK(extract_answer("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}") == "\\left( 3, \\frac{\\pi}{2} \\right)");
  CHECK(extract_answer("\\fbox{42} is it") == "42");
  CHECK(extract_answer("first \\fbox{1} then \\boxed {2}") == "2");
  CHECK(extract_answer("\\boxed{\\{1, 2\\}}") == "\\{1, 2\\}");
  CHECK(extract_answer("$\\boxed 7$.") == "7");
  CHECK_FALSE(extract_answer("\\boxed{\\frac{1}{2}").has_value());
  CHECK_FALSE(extract_answer("The answer is 3 but \\boxed{4").has_value());
  CHECK(extract_answer("Thus, the answer is: $12$.\nDone") == "12");
  CHECK(extract_answer("THE ANSWER IS 7.") == "7");
  CHECK(extract_answer("He pays 5*3=15 dollars.\n#### 15") == "15");
  CHECK(extract_answer("#### 1,000") == "1,000");
  CHECK_FALSE(extract_answer("no final answer here").has_value());
  CHECK_FALSE(extract_answer("").has_value());
}

TEST_CASE("normalize_answer strips what is not the value") {
  CHECK(normalize_answer("\\left( 3, \\frac{\\pi}{2} \\right)") == "(3,\\frac{\\pi}{2})");
  CHECK(normalize_answer("90^\\circ") == "90");
  CHECK(normalize_answer("\\$18.90") == "18.90");
  CHECK(normalize_answer("5.4 \\text{ cents}") == "5.4");
  CHECK(normalize_answer("10\\text{ cm}^2") == "10");
  CHECK(normalize_answer("\\text{Evelyn}") == "Evelyn");
  CHECK(normalize_answer("x = 5.") == "5");
  CHECK(normalize_answer("11,\\! 111,\\! 111,\\! 100") == "11111111100");
  CHECK(normalize_answer("\\dfrac{33}{100}") == "\\frac{33}{100}");
  CHECK(normalize_answer("50\\%") == "50%");
  CHECK(normalize_answer("18 inches") == "18");
  CHECK(normalize_answer("3 1/2") == "3\\frac{1}{2}");
  CHECK(normalize_answer("\\pi r^2") == "\\pi r^2");
  CHECK(normalize_answer("x \\leq 3") == "x\\le3");
  CHECK(normalize_answer("x \\in [-2, 7]") == "[-2,7]");
  CHECK(normalize_answer("\\infty") == "\\infty");
  CHECK(normalize_answer("\\text{(C)}") == "C");
  CHECK(normalize_answer("40_{9}") == "40_9");
  CHECK(normalize_answer("e^{x}") == "e^x");
  CHECK(normalize_answer("a_{1} = 5") == "5");
  CHECK(normalize_answer("x + y = 5") == "x+y=5");
}

TEST_CASE("numbers: separators, decimals, fractions, mixed, negatives, percentages") {
  CHECK(lenient("58,500", "58500"));
  CHECK(lenient("1000000", "1,000,000"));
  CHECK(lenient("\\frac{9}{256}", "9/256"));
  CHECK(lenient("\\dfrac{33}{100}", "0.33"));
  CHECK(lenient("\\frac12", "0.5"));
  CHECK(lenient("\\tfrac{1}{2}", "1/2"));
  CHECK(lenient("3\\frac{1}{2}", "7/2"));
  CHECK(lenient("3 1/2", "3.5"));
  CHECK(lenient("-3\\frac{1}{2}", "-3.5"));
  CHECK(lenient("-4", "-4.0"));
  CHECK_FALSE(lenient("-4", "4"));
  CHECK(lenient("50\\%", "50"));
  CHECK(lenient("50\\%", "0.5"));
  CHECK(lenient("25", "25\\%"));
  CHECK_FALSE(lenient("50\\%", "5"));
  CHECK(lenient("\\frac{2}{4}", "\\frac{1}{2}"));
  CHECK(lenient("\\$5.40", "5.4"));
  CHECK(lenient("90^\\circ", "90"));
  CHECK(lenient("5.4 \\text{ cents}", "5.4"));
  CHECK_FALSE(lenient("7", "8"));
  CHECK_FALSE(lenient("\\frac{1}{3}", "0.33"));  // rel. error 1% > 1e-4
}

TEST_CASE("lenient decimal tolerance is relative 1e-4") {
  CHECK(lenient("\\frac{1}{3}", "0.33333"));
  CHECK(lenient("3.14159", "\\pi"));
  CHECK_FALSE(lenient("3.14", "\\pi"));
  CHECK(lenient("100000", "100000.5"));  // 5e-6 relative
  CHECK_FALSE(lenient("100000", "100001.0"));  // an integral decimal is exact
  CHECK(lenient("100000", "100000.0"));
  CHECK_FALSE(lenient("100000", "100001"));  // both exact integers: no tolerance
  CHECK_FALSE(lenient("0.00001", "0.00002"));
}

TEST_CASE("strict mode (PRM800K-like)") {
  CHECK(strict("\\frac{1}{2}", "\\dfrac{1}{2}"));
  CHECK(strict("\\frac{1}{2}", "1/2"));
  CHECK_FALSE(strict("\\frac{1}{2}", "\\frac{2}{4}"));
  CHECK(strict("\\frac{1}{2}", "0.5"));
  CHECK_FALSE(strict("\\frac{1}{3}", "0.33333"));
  CHECK(strict("4", "4.0"));
  CHECK_FALSE(strict("4", "8/2"));
  CHECK_FALSE(strict("4", "2+2"));
  CHECK(strict("50\\%", "50"));
  CHECK_FALSE(strict("50\\%", "0.5"));
  CHECK(strict("3\\sqrt{13}", "\\sqrt{117}"));
  CHECK(strict("\\text{Evelyn}", "Evelyn"));
  CHECK_FALSE(strict("\\text{Evelyn}", "evelyn"));
  CHECK(lenient("\\text{Evelyn}", "evelyn"));
}

TEST_CASE("LaTeX subset: roots, pi, powers, implicit multiplication, i, symbols") {
  CHECK(lenient("3\\sqrt{13}", "\\sqrt{117}"));
  CHECK(lenient("\\frac{\\pi}{2}", "\\pi/2"));
  CHECK(lenient("2\\sqrt{113}", "\\sqrt{452}"));
  CHECK(lenient("\\sqrt[3]{-8}", "-2"));
  CHECK(lenient("\\sqrt{4}", "2"));
  CHECK(lenient("2^{10}", "1024"));
  CHECK(lenient("2^{-2}", "\\frac14"));
  CHECK(lenient("-2 + 7i", "7i-2"));
  CHECK(lenient("1+274i", "274i+1"));
  CHECK(lenient("i^2", "-1"));
  CHECK(lenient("\\frac{1}{1+i}", "\\frac{1-i}{2}"));
  CHECK_FALSE(lenient("-2 + 7i", "-2 - 7i"));
  CHECK(lenient("2k+2", "2(k+1)"));
  CHECK(lenient("-13x+3", "3-13x"));
  CHECK(lenient("5r^5", "5 r^{5}"));
  CHECK(lenient("(x+1)^2", "x^2+2x+1"));
  CHECK_FALSE(lenient("(x+1)^2", "x^2+x+1"));
  CHECK_FALSE(lenient("2k+2", "2n+2"));
  CHECK(lenient("y = 2x+3", "2x+3"));
  CHECK(lenient("x^2+y^2=1", "y^2+x^2=1"));
  CHECK(lenient("x+y=5", "5=y+x"));
  CHECK_FALSE(lenient("x+y=5", "x-y=5"));
  CHECK(lenient("\\frac{\\sqrt{3}}{2}", "\\sin(\\pi/3)"));
  CHECK(lenient("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"));
  CHECK(lenient("6\\pi", "6 \\pi"));
  CHECK(lenient("\\pi r^2", "r^2\\pi"));
  CHECK_FALSE(lenient("\\sqrt{51}", "51"));
}

TEST_CASE("structures: tuples, intervals, root lists, sets, unions, matrices") {
  CHECK(lenient("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)"));
  CHECK_FALSE(lenient("(3, \\frac{\\pi}{2})", "(\\frac{\\pi}{2}, 3)"));
  CHECK(lenient("(1,-16,-4,43)", "(1, -16, -4, 43)"));
  CHECK_FALSE(lenient("(1,-16,-4,43)", "(1,-16,-4)"));
  CHECK(lenient("[2, 5)", "[2,5)"));
  CHECK_FALSE(lenient("[2, 5)", "(2, 5)"));
  CHECK_FALSE(lenient("[2, 5)", "[2, 5]"));
  CHECK(lenient("(-\\infty, 3]", "(-\\infty,3]"));
  CHECK_FALSE(lenient("(-\\infty, 3]", "(\\infty, 3]"));
  CHECK(lenient("(-\\infty,1)\\cup(2,\\infty)", "(-\\infty, 1) \\cup (2, \\infty)"));
  CHECK_FALSE(lenient("(-\\infty,1)\\cup(2,\\infty)", "(-\\infty, 1] \\cup (2, \\infty)"));
  CHECK(lenient("1, -2", "-2, 1"));
  CHECK(lenient("x = 1, x = -2", "-2, 1"));
  CHECK(lenient("\\frac12, 3", "3, 0.5"));
  CHECK_FALSE(lenient("1, -2", "1, 2"));
  CHECK_FALSE(lenient("1, -2", "1"));
  CHECK(lenient("\\{1, 2\\}", "\\{2, 1\\}"));
  CHECK(lenient("\\{-1, 2\\}", "2, -1"));
  CHECK(canonical_key("\\{-1, 2\\}") == canonical_key("2,-1"));
  CHECK(lenient("a = 2, b = 3", "b=3, a=2"));
  CHECK(lenient("1 \\pm \\sqrt{2}", "1-\\sqrt{2}, 1+\\sqrt{2}"));
  CHECK(lenient("x = \\frac{-1 \\pm \\sqrt{5}}{2}", "\\frac{-1+\\sqrt5}{2}, \\frac{-1-\\sqrt5}{2}"));
  CHECK_FALSE(lenient("1 \\pm \\sqrt{2}", "1+\\sqrt{2}"));
  CHECK(lenient("\\boxed{\\frac12}", "0.5"));
  CHECK_FALSE(lenient("a = 2, b = 3", "a = 3, b = 2"));
  CHECK(lenient("\\text{(C)}", "C"));
  CHECK_FALSE(lenient("\\text{(C)}", "D"));
  CHECK(lenient("x \\in [-2,7]", "[-2, 7]"));
  CHECK(lenient("\\begin{pmatrix} 16/49 \\\\ 48/49 \\\\ 24/49 \\end{pmatrix}",
                "\\begin{pmatrix} \\frac{16}{49} \\\\ \\frac{48}{49} \\\\ \\frac{24}{49} \\end{pmatrix}"));
  CHECK(lenient("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}"));
  CHECK_FALSE(lenient("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}"));
  CHECK_FALSE(lenient("\\begin{pmatrix} 1 & 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"));
}

TEST_CASE("canonical_key merges equal values") {
  CHECK(canonical_key("\\frac12") == "1/2");
  CHECK(canonical_key("0.5") == "1/2");
  CHECK(canonical_key("1/2") == "1/2");
  CHECK(canonical_key("\\dfrac{2}{4}") == "1/2");
  CHECK(canonical_key("50\\%") == "50");
  CHECK(canonical_key("-2+7i") == "-2+7i");
  CHECK(canonical_key("3\\sqrt{13}") == canonical_key("\\sqrt{117}"));
  CHECK(canonical_key("3\\sqrt{13}").rfind("~", 0) == 0);
  CHECK(canonical_key("\\frac{\\pi}{2}") == canonical_key("\\pi/2"));
  CHECK(canonical_key("x=1, x=-2") == canonical_key("-2, 1"));
  CHECK(canonical_key("(1, 2)") == "(1,2)");
  CHECK(canonical_key("\\text{Evelyn}") == "Evelyn");
  CHECK(canonical_key("7") != canonical_key("8"));
}

TEST_CASE("limits: hostile answers are bounded and never hang") {
  GraderLimits bad;
  bad.max_depth = 0;
  CHECK_THROWS_AS(bad.validate(), qstar::InvalidArgument);
  CHECK_THROWS_AS(answers_equal("1", "1", GradeMode::Lenient, bad), qstar::InvalidArgument);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(lenient("1", "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1"));
  CHECK_FALSE(lenient("1", std::string(5000, '(').c_str()));
  CHECK_FALSE(lenient("1", "2^{2^{2^{2^{2^{2^{2^{2^{100}}}}}}}}"));
  CHECK_FALSE(lenient("0", "10^{999999999}"));
  CHECK(lenient("2^{1000}", "2^{500}\\cdot2^{500}"));
  CHECK_FALSE(lenient("2^{1001}", "2^{1001}+1"));  // past max_exponent: text, never approximate
  CHECK(lenient("2^{1001}", "2^{1001}"));           // the same text
  GraderLimits bits;
  bits.max_exact_bits = 64;
  CHECK_FALSE(answers_equal("100000000000000000000000001", "100000000000000000000000000", GradeMode::Lenient, bits));
  std::string huge = "1";
  for (int k = 0; k < 200; ++k) huge += "*99999999999999999999";
  CHECK_FALSE(lenient("1", huge.c_str()));
  const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(secs < 2.0);
  GraderLimits small;
  small.max_answer_bytes = 4;
  CHECK_FALSE(answers_equal("12345", "12345.0", GradeMode::Lenient, small));
  CHECK(answers_equal("12345", "12345", GradeMode::Lenient, small));  // same text
  CHECK(canonical_key("12345", small) == "12345");
  CHECK(canonical_key("\\frac{1}{2}", small) == "\\frac{1}{2}");  // too long to parse: as text
  // Oversized input is never normalised (normalisation is not linear-time in the worst case).
  std::string many;
  for (int k = 0; k < 200000; ++k) many += "\\text{";
  const auto t1 = std::chrono::steady_clock::now();
  CHECK_FALSE(lenient("1", many.c_str()));
  CHECK(canonical_key(many) == many);
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count() < 1.0);
}

namespace {
std::vector<qstar::json::Value> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  std::vector<qstar::json::Value> out;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(qstar::json::parse(line, path));
  return out;
}
}  // namespace

TEST_CASE("MATH-500: every gold equals the \\boxed{} of its own solution (both modes)") {
  const auto rows = read_jsonl(std::string(QSTAR_MATH_DATA_DIR) + "/math500_test.jsonl");
  REQUIRE(rows.size() == 500);
  int lenient_ok = 0, strict_ok = 0;
  for (const auto& r : rows) {
    const auto boxed = extract_answer(r.get_string("solution"));
    REQUIRE_MESSAGE(boxed.has_value(), r.get_string("unique_id"));
    const bool l = answers_equal(r.get_string("answer"), *boxed, GradeMode::Lenient);
    const bool s = answers_equal(r.get_string("answer"), *boxed, GradeMode::Strict);
    if (!l) MESSAGE("lenient mismatch: gold '" << r.get_string("answer") << "' boxed '" << *boxed << "'");
    lenient_ok += l;
    strict_ok += s;
  }
  MESSAGE("MATH-500 self-consistency: lenient " << lenient_ok << "/500, strict " << strict_ok << "/500");
  CHECK(lenient_ok == 500);
  CHECK(strict_ok == 500);
}

TEST_CASE("GSM8K: every gold after #### parses as a number and keys to an integer") {
  for (const char* file : {"/gsm8k_test.jsonl", "/gsm8k_train.jsonl"}) {
    const auto rows = read_jsonl(std::string(QSTAR_MATH_DATA_DIR) + file);
    CHECK(rows.size() > 1000);
    int ok = 0;
    for (const auto& r : rows) {
      // The gold is the text after "####" (the solutions' "The answer is ..." lines, which
      // extract_answer prefers, hold e.g. "<<8=8>>8" in three training rows).
      const std::string& sol = r.get_string("answer");
      const auto at = sol.rfind("####");
      REQUIRE(at != std::string::npos);
      const std::optional<std::string> gold = sol.substr(at + 4);
      const std::string key = canonical_key(*gold);
      const bool integer = !key.empty() && key.find_first_not_of("-0123456789") == std::string::npos;
      if (!integer) MESSAGE(std::string(file) << ": gold '" << *gold << "' keys to '" << key << "'");
      ok += integer && answers_equal(*gold, key);
    }
    CHECK(ok == static_cast<int>(rows.size()));
  }
}
