// Game of 24: exact arithmetic, the ToT step format, expressions, the solver, the task, the
// programmatic generator, the oracle verifiers and the CSV loader, each against an exact
// oracle (hand-checked values, an independent floating-point brute force, the dataset).
#include <doctest/doctest.h>

#include <qstar/tasks/game24.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <vector>

namespace {
using namespace qstar;
using namespace qstar::game24;

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

// Appends a chain of steps under the root and returns the trajectory to its last step.
TrajectoryView chain(Tree& tree, const std::vector<std::string>& texts) {
  NodeId node = Tree::root();
  for (const auto& t : texts) {
    Step s;
    s.text = t;
    s.num_tokens = static_cast<std::int32_t>(t.size());
    s.finish = is_answer_step(t) ? FinishReason::FinalAnswer : FinishReason::StepEnd;
    node = tree.add_child(node, s);
  }
  return tree.trajectory(node);
}

// Independent oracle: floating-point brute force over all pairs and operators.
bool brute_force_24(std::vector<double> v) {
  if (v.size() == 1) return std::fabs(v[0] - 24.0) < 1e-9;
  for (std::size_t i = 0; i < v.size(); ++i) {
    for (std::size_t j = 0; j < v.size(); ++j) {
      if (i == j) continue;
      std::vector<double> rest;
      for (std::size_t k = 0; k < v.size(); ++k)
        if (k != i && k != j) rest.push_back(v[k]);
      const double a = v[i], b = v[j];
      std::vector<double> results{a + b, a - b, a * b};
      if (std::fabs(b) > 1e-12) results.push_back(a / b);
      for (const double r : results) {
        rest.push_back(r);
        if (brute_force_24(rest)) return true;
        rest.pop_back();
      }
    }
  }
  return false;
}
bool brute_force_24(const std::vector<Rational>& v) {
  std::vector<double> d;
  for (const auto& r : v) d.push_back(r.to_double());
  return brute_force_24(d);
}

std::vector<std::string> texts_of(const std::vector<Step>& steps) {
  std::vector<std::string> out;
  for (const auto& s : steps) out.push_back(s.text);
  return out;
}

ExpandRequest request_for(const Problem& p, const TrajectoryView& prefix, int n,
                          std::uint64_t seed) {
  ExpandRequest r;
  r.problem = &p;
  r.prefix = prefix;
  r.num_candidates = n;
  r.seed = seed;
  return r;
}

// The reason check_step gives for `text` from `state`, or "parse: <why>" if it does not parse.
std::string legality(const std::vector<Rational>& state, const std::string& text) {
  std::string why;
  const auto step = parse_step(text, &why);
  if (!step) return "parse: " + why;
  return check_step(state, *step);
}

struct TempFile {
  std::filesystem::path path;
  explicit TempFile(const std::string& contents) {
    static int counter = 0;
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path = std::filesystem::temp_directory_path() /
           ("qstar_game24_test_" + std::to_string(stamp) + "_" + std::to_string(counter++) +
            ".csv");
    std::ofstream(path, std::ios::binary) << contents;
  }
  ~TempFile() { std::filesystem::remove(path); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
};

}  // namespace

TEST_SUITE("game24") {

TEST_CASE("Rational: normalised exact arithmetic") {
  CHECK(Rational(4, -6) == Rational(-2, 3));
  CHECK(Rational(4, -6).num() == -2);
  CHECK(Rational(4, -6).den() == 3);
  CHECK(Rational(0, -5) == Rational(0));
  CHECK(Rational(0, -5).den() == 1);
  CHECK(Rational(1, 3) + Rational(1, 6) == Rational(1, 2));
  CHECK(Rational(1) - Rational(8, 3) == Rational(-5, 3));
  CHECK(Rational(8, 3) * 3 == 8);
  CHECK(Rational(2, 3) / Rational(4, 9) == Rational(3, 2));
  CHECK(Rational(8) / (Rational(3) - Rational(8) / 3) == 24);
  CHECK(-Rational(2, 5) == Rational(-2, 5));
  Rational acc = 1;
  acc += 2;
  acc *= Rational(1, 2);
  acc -= Rational(1, 4);
  acc /= Rational(5, 4);
  CHECK(acc == 1);

  CHECK(Rational(1, 3) < Rational(1, 2));
  CHECK(Rational(-1) < Rational(0));
  CHECK(Rational(-1, 2) > Rational(-2, 3));
  CHECK((Rational(2, 4) <=> Rational(1, 2)) == std::strong_ordering::equal);
  CHECK(Rational(kMax - 1, kMax) < Rational(1));

  CHECK(Rational(8, 3).to_string() == "8/3");
  CHECK(Rational(-2).to_string() == "-2");
  CHECK(Rational(48, 2).to_string() == "24");
  CHECK(Rational(-8, 3).to_string() == "-8/3");

  CHECK_THROWS_AS(Rational(1) / Rational(0), InvalidArgument);
  CHECK_THROWS_AS(Rational(1, 0), InvalidArgument);
  std::string why;
  CHECK_FALSE(apply('/', Rational(3), Rational(0), &why));
  CHECK(why == "division by zero");
}

TEST_CASE("Rational: 128-bit intermediates and overflow") {
  // The products overflow int64 but the reduced results do not.
  CHECK(Rational(kMax) * Rational(1, kMax) == 1);
  CHECK(Rational(1, kMax) + Rational(1, kMax) == Rational(2, kMax));
  CHECK(Rational(kMax, 2) - Rational(kMax, 2) == 0);
  CHECK(Rational(kMax - 1, kMax) < Rational(kMax, kMax - 1));
  // Results that do not fit int64 throw qstar::Error.
  CHECK_THROWS_AS(Rational(kMax) + Rational(1), Error);
  CHECK_THROWS_AS(Rational(kMax) * Rational(2), Error);
  CHECK_THROWS_AS(Rational(1, kMax) / Rational(kMax), Error);
  const std::int64_t lowest = std::numeric_limits<std::int64_t>::min();
  CHECK_THROWS_AS(Rational{lowest}, Error);
  std::string why;
  CHECK_FALSE(apply('*', Rational(kMax), Rational(kMax), &why));
  CHECK(why == "arithmetic overflow");
}

TEST_CASE("Rational: parse") {
  CHECK(Rational::parse("8/3") == Rational(8, 3));
  CHECK(Rational::parse("-2") == Rational(-2));
  CHECK(Rational::parse("7") == Rational(7));
  CHECK(Rational::parse("-8/3") == Rational(-8, 3));
  CHECK(Rational::parse("4/2") == Rational(2));
  CHECK(Rational::parse("0") == Rational(0));
  std::string why;
  CHECK_FALSE(Rational::parse("x", &why));
  CHECK(why == "'x' is not a number");
  for (const char* bad : {"", "-", "8/", "/3", "+3", "2.5", "8/-3", "--2", "1/2/3", " 4", "4 "}) {
    CAPTURE(bad);
    CHECK_FALSE(Rational::parse(bad));
  }
  CHECK_FALSE(Rational::parse("8/0", &why));
  CHECK(why == "'8/0' has a zero denominator");
  CHECK_FALSE(Rational::parse("99999999999999999999", &why));
  CHECK(why == "'99999999999999999999' is too large");
  CHECK(Rational::parse("9223372036854775807") == Rational(kMax));
}

TEST_CASE("parse_puzzle") {
  CHECK(parse_puzzle("4 5 6 10") == std::vector<int>{4, 5, 6, 10});
  CHECK(parse_puzzle("  1\t1 13\n6 ") == std::vector<int>{1, 1, 13, 6});
  CHECK_THROWS_WITH_AS(parse_puzzle("4 5 x"), "puzzle \"4 5 x\": 'x' is not a number",
                       ParseError);
  CHECK_THROWS_WITH_AS(parse_puzzle("4 5 6"), "puzzle \"4 5 6\": expected 4 numbers, got 3",
                       ParseError);
  CHECK_THROWS_WITH_AS(parse_puzzle("1 2 3 4 5"),
                       "puzzle \"1 2 3 4 5\": expected 4 numbers, got 5", ParseError);
  CHECK_THROWS_WITH_AS(parse_puzzle("4 5 6 14"), "puzzle \"4 5 6 14\": 14 is not in 1..13",
                       ParseError);
  CHECK_THROWS_WITH_AS(parse_puzzle("0 5 6 7"), "puzzle \"0 5 6 7\": 0 is not in 1..13",
                       ParseError);
  CHECK_THROWS_WITH_AS(parse_puzzle("-1 5 6 7"), "puzzle \"-1 5 6 7\": '-1' is not a number",
                       ParseError);
  CHECK_THROWS_WITH_AS(parse_puzzle(""), "puzzle \"\": expected 4 numbers, got 0", ParseError);
  CHECK_THROWS_AS(parse_puzzle("4,5,6,10"), ParseError);
  CHECK_THROWS_AS(parse_puzzle("4 5 6 99999999999999999999"), ParseError);
}

TEST_CASE("parse_step: accepted forms") {
  auto s = parse_step("4 + 8 = 12 (left: 8 10 12)");
  REQUIRE(s);
  CHECK(s->a == 4);
  CHECK(s->op == '+');
  CHECK(s->b == 8);
  CHECK(s->c == 12);
  CHECK(s->left == std::vector<Rational>{8, 10, 12});
  CHECK(s->to_string() == "4 + 8 = 12 (left: 8 10 12)");

  s = parse_step("8 / 3 = 8/3 (left: 1 1 8/3)");
  REQUIRE(s);
  CHECK(s->op == '/');
  CHECK(s->c == Rational(8, 3));
  CHECK(s->left == std::vector<Rational>{1, 1, Rational(8, 3)});

  s = parse_step("4 - 10 = -6 (left: -6 5 6)");
  REQUIRE(s);
  CHECK(s->c == -6);
  CHECK(s->left.front() == -6);

  s = parse_step("4 \xC3\x97 6 = 24 (left: 24)");  // 4 × 6
  REQUIRE(s);
  CHECK(s->op == '*');
  CHECK(s->left == std::vector<Rational>{24});
  s = parse_step("6 \xC3\xB7 4 = 3/2 (left: 3/2 8)");  // 6 ÷ 4
  REQUIRE(s);
  CHECK(s->op == '/');
  s = parse_step("6 \xE2\x88\x92 4 = 2 (left: 2)");  // 6 − 4
  REQUIRE(s);
  CHECK(s->op == '-');

  s = parse_step("  4  *\t8 = 32 ( left :  8  10 32 )  ");
  REQUIRE(s);
  CHECK(s->op == '*');
  CHECK(s->left == std::vector<Rational>{8, 10, 32});
}

TEST_CASE("parse_step: rejected forms and reasons") {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"4 x 6 = 24 (left: 24)", "'x' is not an operator (+ - * /)"},
      {"4+8 = 12 (left: 8 10 12)", "expected \"a op b = c\" before \"(left: ...)\", got 3 tokens"},
      {"4 + 8 = 12", "missing \"(left: ...)\""},
      {"4 + 8 = 12 (left: )", "empty left list"},
      {"4 + 8 = 12 (left: 8 10 12", "missing ')'"},
      {"4 + 8 = 12 (left: 8 10 12) and more", "unexpected text after ')': 'and more'"},
      {"4 + 8 = twelve (left: 8 10 12)", "'twelve' is not a number"},
      {"four + 8 = 12 (left: 8 10 12)", "'four' is not a number"},
      {"4 + 8 == 12 (left: 8 10 12)", "expected '=', got '=='"},
      {"4 + 8 = 12 (right: 8 10 12)", "expected \"(left: ...)\""},
      {"4 + 8 = 12 (left 8 10 12)", "expected ':' after \"(left\""},
      {"4 + 8 = 12 (left: 8 1/0 12)", "left list: '1/0' has a zero denominator"},
      {"4 + 8 = 12 (left: 8, 10, 12)", "left list: '8,' is not a number"},
      {"8 / 3 = 2.67 (left: 2.67 1 1)", "'2.67' is not a number"},
      {"Answer: (10 - 4) * (5 - 1) = 24", "an answer step, not a move"},
      {"   ", "empty step"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.first);
    std::string why;
    CHECK_FALSE(parse_step(c.first, &why));
    CHECK(why == c.second);
  }
  CHECK_FALSE(parse_step("4 + 8 = 12"));  // works without a reason pointer
}

TEST_CASE("is_answer_step and answer_expression") {
  CHECK(is_answer_step("Answer: (6 - 4) * (4 + 8) = 24"));
  CHECK(is_answer_step("  Answer:4*6"));
  CHECK_FALSE(is_answer_step("answer: 4 * 6 = 24"));
  CHECK_FALSE(is_answer_step("4 * 6 = 24 (left: 24)"));
  CHECK(answer_expression("Answer: (6 - 4) * (4 + 8) = 24") == "(6 - 4) * (4 + 8)");
  CHECK(answer_expression("(6 - 4) * (4 + 8)=24 ") == "(6 - 4) * (4 + 8)");
  CHECK(answer_expression("(6 - 4) * (4 + 8) = 25") == "(6 - 4) * (4 + 8) = 25");
}

TEST_CASE("check_step: legality against the state multiset") {
  const std::vector<Rational> state{4, 5, 6, 10};
  CHECK(legality(state, "10 - 4 = 6 (left: 5 6 6)") == "");
  CHECK(legality(state, "10 - 4 = 6 (left: 6 5 6)") == "");  // any order
  CHECK(legality(state, "4 - 10 = -6 (left: -6 5 6)") == "");
  CHECK(legality(state, "5 / 10 = 1/2 (left: 1/2 4 6)") == "");
  CHECK(legality(state, "3 + 4 = 7 (left: 5 6 7 10)") ==
        "3 is not among the remaining numbers (4 5 6 10)");
  CHECK(legality(state, "4 + 7 = 11 (left: 5 6 11)") ==
        "7 is not among the remaining numbers (4 5 6 10)");
  CHECK(legality(state, "5 + 5 = 10 (left: 4 6 10 10)") ==
        "5 is used twice but appears once among the remaining numbers (4 5 6 10)");
  CHECK(legality(state, "4 + 5 = 10 (left: 6 10 10)") == "4 + 5 is 9, not 10");
  CHECK(legality(state, "4 + 5 = 9 (left: 6 9)") == "left list (6 9) should be (6 9 10)");
  CHECK(legality(state, "4 + 5 = 9 (left: 6 9 10 10)") ==
        "left list (6 9 10 10) should be (6 9 10)");
  CHECK(legality(state, "4 + 5 = 9 (left: 5 9 10)") == "left list (5 9 10) should be (6 9 10)");

  const std::vector<Rational> twins{5, 5, 6, 10};
  CHECK(legality(twins, "5 + 5 = 10 (left: 6 10 10)") == "");
  const std::vector<Rational> thirds{1, 1, 3, 8};
  CHECK(legality(thirds, "8 / 3 = 8/3 (left: 1 1 8/3)") == "");
  CHECK(legality(thirds, "8 / 3 = 3 (left: 1 1 3)") == "8 / 3 is 8/3, not 3");
  const std::vector<Rational> with_zero{0, 4, 6};
  CHECK(legality(with_zero, "4 / 0 = 0 (left: 0 6)") == "4 / 0: division by zero");
}

TEST_CASE("legal_moves: canonical, legal, deduplicated") {
  const std::vector<Rational> state{10, 4, 6, 5};
  const auto moves = legal_moves(state);
  CHECK(moves.size() == 36);  // 6 pairs x (+, *, both -, both /)
  std::set<std::string> texts;
  for (const auto& m : moves) {
    CHECK(check_step(state, m) == "");
    texts.insert(m.to_string());
  }
  CHECK(texts.size() == moves.size());
  CHECK(moves[0].to_string() == "4 + 5 = 9 (left: 6 9 10)");
  CHECK(moves[1].to_string() == "4 * 5 = 20 (left: 6 10 20)");
  CHECK(moves[2].to_string() == "5 - 4 = 1 (left: 1 6 10)");
  CHECK(moves[3].to_string() == "4 - 5 = -1 (left: -1 6 10)");
  CHECK(moves[4].to_string() == "5 / 4 = 5/4 (left: 5/4 6 10)");
  CHECK(moves[5].to_string() == "4 / 5 = 4/5 (left: 4/5 6 10)");

  // Repeated numbers give identical texts, listed once: (4,4): + * - /; (4,6) (4,8) (6,8): 6.
  CHECK(legal_moves({4, 4, 6, 8}).size() == 4 + 3 * 6);
  CHECK(legal_moves({1, 1, 1, 1}).size() == 4);
  // Division by zero is skipped: (0,4) gives + * 4-0 0-4 0/4.
  CHECK(legal_moves({0, 4}).size() == 5);
  CHECK(legal_moves({24}).empty());
}

TEST_CASE("eval_expression: exact values and leaves") {
  std::vector<Rational> leaves;
  CHECK(eval_expression("(10 - 4) * (5 - 1)", &leaves) == Rational(24));
  CHECK(leaves == std::vector<Rational>{10, 4, 5, 1});
  CHECK(eval_expression("8 / (3 - 8 / 3)", &leaves) == Rational(24));  // exact, via 1/3
  CHECK(leaves == std::vector<Rational>{8, 3, 8, 3});
  CHECK(eval_expression("1 - 2 - 3") == Rational(-4));  // left-associative
  CHECK(eval_expression("24 / 2 / 3") == Rational(4));
  CHECK(eval_expression("2 * 3 + 4 * 5") == Rational(26));  // precedence
  CHECK(eval_expression("2 * (3 + 4) * 5") == Rational(70));
  CHECK(eval_expression("((((7))))") == Rational(7));
  CHECK(eval_expression("4\xC3\x97" "6") == Rational(24));              // 4×6
  CHECK(eval_expression("12 \xC3\xB7 3 \xE2\x88\x92 1") == Rational(3));  // 12 ÷ 3 − 1
  CHECK(eval_expression("1/3") == Rational(1, 3));
  CHECK(eval_expression("007 + 1") == Rational(8));
}

TEST_CASE("eval_expression: junk is rejected with a reason") {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"", "empty expression"},
      {"   ", "empty expression"},
      {"4 +", "unexpected end of expression"},
      {"(4 + 6", "missing ')'"},
      {"(4 + 6 5)", "unexpected '5' at position 7"},
      {"4 + 6)", "unexpected ')' at position 5"},
      {"4 x 6", "unexpected 'x' at position 2"},
      {"4 6", "unexpected '6' at position 2"},
      {"-4 + 28", "unexpected '-' at position 0"},
      {"4 * -6", "unexpected '-' at position 4"},
      {"2.5 * 4", "unexpected '.' at position 1"},
      {"4 * 6 = 24", "unexpected '=' at position 6"},
      {"()", "unexpected ')' at position 1"},
      {"4 \xE2\x80\xA2 6", "unexpected '\xE2\x80\xA2' at position 2"},  // a bullet
      {"4 / (2 - 2)", "division by zero"},
      {"99999999999999999999 + 1", "number '99999999999999999999' is too large"},
      {"3037000500 * 3037000500 * 3037000500", "arithmetic overflow"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.first);
    std::string why;
    CHECK_FALSE(eval_expression(c.first, nullptr, &why));
    CHECK(why == c.second);
  }
  // Nesting: 64 levels parse, 65 do not.
  const auto nested = [](int depth) {
    return std::string(static_cast<std::size_t>(depth), '(') + "24" +
           std::string(static_cast<std::size_t>(depth), ')');
  };
  CHECK(eval_expression(nested(64)) == Rational(24));
  std::string why;
  CHECK_FALSE(eval_expression(nested(65), nullptr, &why));
  CHECK(why == "expression nested too deeply (more than 64 levels)");
  CHECK_FALSE(eval_expression(nested(100000)));  // no stack overflow
  // Long flat chains are evaluated iteratively.
  std::string chain_expr = "1";
  for (int i = 0; i < 20000; ++i) chain_expr += " + 1";
  CHECK(eval_expression(chain_expr) == Rational(20001));
}

TEST_CASE("canonical_expression: commutative/associative variants share a key") {
  const std::string key = canonical_expression("(10 - 4) * (5 - 1)");
  CHECK(key == "(10 - 4) * (5 - 1)");
  for (const char* variant : {"(5 - 1) * (10 - 4)", "(10-4)*(5-1)", "((10 - 4) * (5 - 1))",
                              "Answer: (5 - 1) * (10 - 4) = 24", "(5-1)*(10-4) = 24",
                              "(10 \xE2\x88\x92 4) \xC3\x97 (5 \xE2\x88\x92 1)"}) {
    CAPTURE(variant);
    CHECK(canonical_expression(variant) == key);
  }
  CHECK(canonical_expression("(1 + 2) + 3") == canonical_expression("1 + (2 + 3)"));
  CHECK(canonical_expression("3 + 2 + 1") == "1 + 2 + 3");
  CHECK(canonical_expression("4 * 6") == canonical_expression("6 * 4"));
  CHECK(canonical_expression("2 * (3 * 4)") == canonical_expression("(4 * 2) * 3"));
  CHECK(canonical_expression("13 - (5 - 4)") == canonical_expression("13 - 5 + 4"));
  CHECK(canonical_expression("13 - (5 - 4)") == canonical_expression("4 + 13 - 5"));
  CHECK(canonical_expression("8 / (2 / 6)") == canonical_expression("8 * 6 / 2"));
  CHECK(canonical_expression("6 + 8 * (4 - 2)") == canonical_expression("(4 - 2) * 8 + 6"));
  CHECK(canonical_expression("24 / 2 / 3") == "24 / 2 / 3");
  CHECK(canonical_expression("24 / 3 / 2") == "24 / 2 / 3");

  // Different expressions keep different keys.
  CHECK(canonical_expression("(10 - 4) * (5 - 1)") != canonical_expression("(4 - 10) * (5 - 1)"));
  CHECK(canonical_expression("8 / (3 - 8 / 3)") != canonical_expression("8 / (8 / 3 - 3)"));
  CHECK(canonical_expression("6 * 4") != canonical_expression("6 + 4"));
  CHECK(canonical_expression("24 / 2 / 3") != canonical_expression("24 / (2 / 3)"));
  CHECK(canonical_expression("1 - 2 - 3") != canonical_expression("1 - (2 - 3)"));
  CHECK(canonical_expression("2 * 3 + 4") != canonical_expression("2 * (3 + 4)"));

  // The key is itself an equivalent expression over the same numbers.
  for (const char* e : {"8 / (3 - 8 / 3)", "13 - (5 - (4 - 2)) * 3", "(1 + 2) / (3 / (4 - 9))",
                        "12 / (6 / (1 + 1))", "2 * (3 + 4) - 5 / (6 - 7) * 8"}) {
    CAPTURE(e);
    std::vector<Rational> l1, l2;
    const auto v1 = eval_expression(e, &l1);
    const auto v2 = eval_expression(canonical_expression(e), &l2);
    REQUIRE(v1);
    CHECK(v1 == v2);
    std::sort(l1.begin(), l1.end());
    std::sort(l2.begin(), l2.end());
    CHECK(l1 == l2);
  }
  // Junk maps to its whitespace-normalised self.
  CHECK(canonical_expression("  no   idea\t") == "no idea");
  CHECK(canonical_expression("4 * x = 24") == "4 * x");
}

TEST_CASE("check_answer") {
  const std::vector<int> p{4, 5, 6, 10};
  CHECK(check_answer(p, "4 + 5 * (10 - 6)"));
  CHECK(check_answer(p, "(10 - 6) * 5 + 4 = 24"));
  CHECK(check_answer(p, "Answer: 4 + 5 * (10 - 6) = 24"));
  CHECK(check_answer(p, "5*(10-6)+4"));
  CHECK_FALSE(check_answer(p, "4 * 6"));                    // 24, but not all numbers
  CHECK_FALSE(check_answer(p, "(10 - 4) * (6 - 5)"));       // all numbers, but 6
  CHECK_FALSE(check_answer(p, "4 + 5 * (10 - 6) = 25"));    // junk after the expression
  CHECK_FALSE(check_answer(p, "4 + 5 * (10 - 6) + 1 - 1"));  // extra numbers
  CHECK_FALSE(check_answer(p, "4 * 6 * (10 - 5) / 5"));     // 5 used twice
  CHECK_FALSE(check_answer(p, "4 + 5 x (10 - 6)"));
  CHECK_FALSE(check_answer(p, ""));
  CHECK(check_answer({3, 3, 8, 8}, "8 / (3 - 8 / 3)"));  // needs exact arithmetic
  CHECK_FALSE(check_answer({3, 3, 8, 8}, "8 / (3 - 8 / 3) - 0"));
  CHECK(check_answer({1, 5, 5, 5}, "(5 - 1 / 5) * 5"));
}

TEST_CASE("solver: every dataset puzzle is solved with a checked expression") {
  const auto problems = load_csv(QSTAR_TEST_DATA);
  REQUIRE(problems.size() == 1000);
  for (const auto& p : problems) {
    const auto puzzle = parse_puzzle(p.text);
    const auto expr = solve(puzzle);
    CAPTURE(p.text);
    REQUIRE(expr);
    CHECK(check_answer(puzzle, *expr));
    CHECK(solvable(to_rationals(puzzle)));
  }
  CHECK(solve({4, 4, 6, 8}));
  CHECK(*solve({3, 3, 8, 8}) == "8 / (3 - 8 / 3)");
}

TEST_CASE("solver: exhaustive agreement with a brute force; 1362 of 1820 solvable") {
  int solvable_count = 0, total = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int a = 1; a <= 13; ++a)
    for (int b = a; b <= 13; ++b)
      for (int c = b; c <= 13; ++c)
        for (int d = c; d <= 13; ++d) {
          ++total;
          solvable_count += solvable({a, b, c, d}) ? 1 : 0;
        }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(total == 1820);
  CHECK(solvable_count == 1362);
  // Optimised builds take a few tens of milliseconds; the bound leaves room for sanitizers.
  CHECK_MESSAGE(seconds < 5.0, "solvable() over all 1820 puzzles took " << seconds << " s");

  for (int a = 1; a <= 13; a += 2)
    for (int b = a; b <= 13; b += 3)
      for (int c = b; c <= 13; ++c)
        for (int d = c; d <= 13; d += 2) {
          const std::vector<int> p{a, b, c, d};
          const bool ok = solvable(to_rationals(p));
          CAPTURE(a);
          CAPTURE(b);
          CAPTURE(c);
          CAPTURE(d);
          CHECK(ok ==
                brute_force_24(std::vector<double>{double(a), double(b), double(c), double(d)}));
          const auto expr = solve(p);
          CHECK(expr.has_value() == ok);
          if (expr) CHECK(check_answer(p, *expr));
        }

  for (const auto& p : std::vector<std::vector<int>>{{1, 1, 1, 1}, {1, 1, 1, 2}, {13, 13, 13, 13},
                                                      {1, 1, 2, 2}, {1, 1, 5, 9}}) {
    CAPTURE(p);
    CHECK_FALSE(solvable(to_rationals(p)));
    CHECK_FALSE(solve(p));
  }
  CHECK(solvable({24}));
  CHECK(solvable({Rational(48, 2)}));
  CHECK_FALSE(solvable({23}));
  CHECK_FALSE(solvable({}));
  CHECK(solvable({4, 6}));
  CHECK_FALSE(solvable({5, 5}));
  CHECK(solvable({Rational(8, 3), 9}));
  CHECK(solvable({Rational(1, 3), 8, 9}));  // 9 * (1/3) * 8
  CHECK(solvable({Rational(1, 3), 8, 3}) == brute_force_24(std::vector<double>{1.0 / 3, 8, 3}));
  CHECK(solvable({2, 2, 2, 3, 1}));          // five numbers: 2*2*2*3*1
}

TEST_CASE("Game24Task") {
  const Game24Task task;
  const Problem problem{"901", "4 5 6 10", std::nullopt};
  CHECK(task.format(problem).find("4 5 6 10") != std::string::npos);
  Step answer;
  answer.text = "Answer: 4 + 5 * (10 - 6) = 24";
  CHECK(task.is_terminal(answer));
  Step move;
  move.text = "10 - 6 = 4 (left: 4 4 5)";
  CHECK_FALSE(task.is_terminal(move));

  Tree tree;
  const auto solved = chain(tree, {"10 - 6 = 4 (left: 4 4 5)", "4 * 5 = 20 (left: 4 20)",
                                   "4 + 20 = 24 (left: 24)", "Answer: 4 + 5 * (10 - 6) = 24"});
  CHECK(task.extract_answer(solved) == std::optional<std::string>("4 + 5 * (10 - 6)"));
  CHECK(task.check(problem, *task.extract_answer(solved)));
  CHECK_FALSE(task.check(problem, "4 * 6"));
  CHECK(task.canonicalize("(10 - 6) * 5 + 4") == task.canonicalize("4 + 5 * (10 - 6)"));
  const auto partial = chain(tree, {"10 - 6 = 4 (left: 4 4 5)"});
  CHECK_FALSE(task.extract_answer(partial));
  CHECK_FALSE(task.extract_answer(tree.trajectory(Tree::root())));
  CHECK_THROWS_AS(task.check(Problem{"x", "4 5", std::nullopt}, "4 + 5"), ParseError);
}

TEST_CASE("state_after replays exactly") {
  const std::vector<int> p{4, 5, 6, 10};
  std::string why;
  Tree tree;
  const auto t = chain(tree, {"10 - 6 = 4 (left: 4 4 5)", "4 * 5 = 20 (left: 4 20)"});
  CHECK(state_after(p, t, &why) == std::vector<Rational>{4, 20});
  CHECK(state_after(p, tree.trajectory(Tree::root())) == std::vector<Rational>{4, 5, 6, 10});
  const std::vector<std::string> done{"10 - 6 = 4 (left: 4 4 5)", "4 * 5 = 20 (left: 4 20)",
                                      "4 + 20 = 24 (left: 24)", "Answer: 4 + 5 * (10 - 6) = 24"};
  CHECK(state_after(p, done) == std::vector<Rational>{24});
  const std::vector<std::string> illegal{"10 - 6 = 4 (left: 4 4 5)", "4 * 6 = 24 (left: 4 24)"};
  CHECK_FALSE(state_after(p, illegal, &why));
  CHECK(why == "step 2: 6 is not among the remaining numbers (4 4 5)");
  const std::vector<std::string> malformed{"10 - 6 = 4 (left: 4 4 5)", "4 * 5 is 20"};
  CHECK_FALSE(state_after(p, malformed, &why));
  CHECK(why == "step 2: missing \"(left: ...)\"");
  const std::vector<std::string> early{"Answer: 4 * 6", "10 - 6 = 4 (left: 4 4 5)"};
  CHECK_FALSE(state_after(p, early, &why));
  CHECK(why == "step 1: an answer step before the last step");
}

TEST_CASE("ProgrammaticGenerator: legal, distinct proposals from the start state") {
  const Problem problem{"901", "4 5 6 10", std::nullopt};
  const ProgrammaticGenerator gen;
  CHECK(gen.name() == "game24-programmatic");
  CHECK(gen.max_batch_size() == 0);
  const std::vector<Rational> start{4, 5, 6, 10};
  std::set<std::string> all_moves;
  for (const auto& m : legal_moves(start)) all_moves.insert(m.to_string());

  std::set<std::string> seen;
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    const auto steps = gen.propose(request_for(problem, {}, 5, seed));
    REQUIRE(steps.size() == 5);
    std::set<std::string> distinct;
    for (const auto& s : steps) {
      CAPTURE(s.text);
      CHECK(legality(start, s.text) == "");
      CHECK(s.finish == FinishReason::StepEnd);
      CHECK(s.tokens.empty());
      CHECK(s.num_tokens == static_cast<std::int32_t>(s.text.size()));
      CHECK(s.logprob == doctest::Approx(-std::log(36.0)));
      distinct.insert(s.text);
      seen.insert(s.text);
    }
    CHECK(distinct.size() == 5);
  }
  CHECK(seen.size() > 30);  // sampling covers most of the 36 moves

  // Asking for more than there are: every move exactly once.
  const auto every = texts_of(gen.propose(request_for(problem, {}, 100, 7)));
  CHECK(every.size() == 36);
  CHECK(std::set<std::string>(every.begin(), every.end()) == all_moves);

  // With replacement: as many as asked, repeats included, all legal.
  const ProgrammaticGenerator repeat({.error_rate = 0.0, .propose_distinct = false});
  const auto many = repeat.propose(request_for(problem, {}, 100, 7));
  CHECK(many.size() == 100);
  const auto many_texts = texts_of(many);
  CHECK(std::set<std::string>(many_texts.begin(), many_texts.end()).size() < 100);
  for (const auto& t : many_texts) CHECK(all_moves.count(t) == 1);

  // Greedy: the first moves in canonical order, whatever the seed.
  auto greedy = request_for(problem, {}, 3, 1);
  greedy.greedy = true;
  const auto g1 = texts_of(gen.propose(greedy));
  greedy.seed = 99;
  CHECK(texts_of(gen.propose(greedy)) == g1);
  const auto canonical = legal_moves(start);
  REQUIRE(g1.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(g1[i] == canonical[i].to_string());
}

TEST_CASE("ProgrammaticGenerator: deterministic per seed, independent of the batch") {
  const Problem p1{"1", "4 5 6 10", std::nullopt};
  const Problem p2{"2", "1 1 4 6", std::nullopt};
  const Problem p3{"3", "3 3 8 8", std::nullopt};
  Tree tree;
  const auto prefix = chain(tree, {"10 - 6 = 4 (left: 4 4 5)"});
  for (const double error_rate : {0.0, 0.4}) {
    const ProgrammaticGenerator gen({.error_rate = error_rate});
    const auto target = request_for(p1, prefix, 4, 12345);
    const std::vector<ExpandRequest> alone{target};
    const std::vector<ExpandRequest> batch{request_for(p2, {}, 3, 1), target,
                                           request_for(p3, {}, 6, 12345), target};
    const auto a = gen.expand(alone);
    const auto b = gen.expand(batch);
    REQUIRE(a.size() == 1);
    REQUIRE(b.size() == 4);
    CHECK(texts_of(a[0]) == texts_of(b[1]));
    CHECK(texts_of(a[0]) == texts_of(b[3]));
    for (std::size_t i = 0; i < a[0].size(); ++i) CHECK(a[0][i].logprob == b[1][i].logprob);
    CHECK(texts_of(gen.expand(alone)[0]) == texts_of(a[0]));  // same seed, same proposals
    CHECK(b[0].size() == 3);
    CHECK(b[2].size() == 6);
    auto other = target;
    other.seed = 54321;
    CHECK(texts_of(gen.propose(other)) != texts_of(a[0]));
  }
}

TEST_CASE("ProgrammaticGenerator: continues from the believed state and answers") {
  const Problem problem{"1", "4 4 6 8", std::nullopt};
  const ProgrammaticGenerator gen;
  Tree tree;
  // After one step the proposals come from the step's left list.
  const auto one = chain(tree, {"4 + 8 = 12 (left: 4 6 12)"});
  for (const auto& s : gen.propose(request_for(problem, one, 10, 3)))
    CHECK(legality({4, 6, 12}, s.text) == "");
  // ToT's own example: three steps, then the substituted answer.
  const auto three = chain(tree, {"4 + 8 = 12 (left: 4 6 12)", "6 - 4 = 2 (left: 2 12)",
                                  "2 * 12 = 24 (left: 24)"});
  const auto ans = gen.propose(request_for(problem, three, 5, 3));
  REQUIRE(ans.size() == 1);  // one distinct answer
  CHECK(ans[0].text == "Answer: (6 - 4) * (4 + 8) = 24");
  CHECK(ans[0].finish == FinishReason::FinalAnswer);
  CHECK(ans[0].logprob == 0.0);
  CHECK(check_answer({4, 4, 6, 8}, ans[0].text));
  const ProgrammaticGenerator repeat({.propose_distinct = false});
  CHECK(repeat.propose(request_for(problem, three, 3, 3)).size() == 3);

  // Substitution trusts the operands, not the stated results (as the LLM does).
  const auto off = chain(tree, {"4 + 8 = 12 (left: 4 6 12)", "6 - 4 = 2 (left: 2 12)",
                                "2 * 12 = 23 (left: 23)"});
  CHECK(texts_of(gen.propose(request_for(problem, off, 1, 3))) ==
        std::vector<std::string>{"Answer: (6 - 4) * (4 + 8) = 24"});
  // An illegal shortcut still gets an answer, built from what can be substituted: wrong.
  const auto wrong = chain(tree, {"4 * 6 = 24 (left: 24)"});
  const auto wa = gen.propose(request_for(problem, wrong, 1, 3));
  REQUIRE(wa.size() == 1);
  CHECK(wa[0].text == "Answer: 4 * 6 = 24");
  CHECK_FALSE(check_answer({4, 4, 6, 8}, wa[0].text));
  // Operands that match nothing are written as themselves.
  const auto odd = chain(tree, {"20 - 8/3 = 52/3 (left: 52/3)"});
  CHECK(texts_of(gen.propose(request_for(problem, odd, 1, 3))) ==
        std::vector<std::string>{"Answer: 20 - (8/3) = 24"});

  // The model trusts its own text: an illegal step's left list is the state it works from.
  const auto illegal = chain(tree, {"3 + 4 = 7 (left: 4 6 7 8)"});
  for (const auto& s : gen.propose(request_for(problem, illegal, 10, 3)))
    CHECK(legality({4, 6, 7, 8}, s.text) == "");
  // A last step that does not parse: back to the puzzle's numbers.
  const auto garbage = chain(tree, {"let me think"});
  for (const auto& s : gen.propose(request_for(problem, garbage, 10, 3)))
    CHECK(legality({4, 4, 6, 8}, s.text) == "");
  // A finished trajectory gets no proposal.
  const auto done = chain(tree, {"Answer: (6 - 4) * (4 + 8) = 24"});
  CHECK(gen.propose(request_for(problem, done, 3, 3)).empty());
}

TEST_CASE("ProgrammaticGenerator: a state larger than the puzzle gets no proposal") {
  // Regression (fuzz_game24): a last step with hundreds of numbers in its left list made
  // propose() enumerate O(n^2) moves of n numbers each, deduplicated by a linear scan:
  // seconds for 126 numbers, hours and gigabytes for 300.
  const Problem problem{"1", "4 4 6 8", std::nullopt};
  const ProgrammaticGenerator gen;
  Tree tree;
  std::string left;
  for (int v = 1; v <= 300; ++v) left += (v > 1 ? " " : "") + std::to_string(v);
  const auto big = chain(tree, {"1 + 1 = 2 (left: " + left + ")"});
  CHECK(gen.propose(request_for(problem, big, 4, 3)).empty());
  const auto five = chain(tree, {"1 + 1 = 2 (left: 2 4 4 6 8)"});
  CHECK(gen.propose(request_for(problem, five, 4, 3)).empty());
  // Four numbers (as many as the puzzle) are still a state it works from.
  const auto four = chain(tree, {"1 + 1 = 2 (left: 2 4 6 8)"});
  const auto props = gen.propose(request_for(problem, four, 4, 3));
  CHECK(props.size() == 4);
  for (const auto& s : props) CHECK(legality({2, 4, 6, 8}, s.text) == "");
}

TEST_CASE("legal_moves: six distinct moves per pair of distinct positive integers") {
  // a + b, a * b, b - a, a - b, b / a and a / b differ in text for a < b, so 40 numbers give
  // 6 * C(40, 2) moves, each leaving 39 numbers (quadratic in the pairs, not quartic).
  std::vector<Rational> state;
  for (int v = 40; v >= 1; --v) state.push_back(v);
  const auto moves = legal_moves(state);
  CHECK(moves.size() == 6 * 40 * 39 / 2);
  std::set<std::string> texts;
  for (const auto& m : moves) {
    CHECK(m.left.size() == 39);
    texts.insert(m.to_string());
  }
  CHECK(texts.size() == moves.size());
  CHECK(moves.front().to_string().rfind("1 + 2 = 3 (left: 3 3 4 5 ", 0) == 0);
}

TEST_CASE("ProgrammaticGenerator: error_rate corrupts steps") {
  const Problem problem{"1", "4 5 6 10", std::nullopt};
  const std::vector<Rational> start{4, 5, 6, 10};
  const ProgrammaticGenerator bad({.error_rate = 1.0});
  Tree tree;
  const auto three = chain(tree, {"10 - 6 = 4 (left: 4 4 5)", "4 * 5 = 20 (left: 4 20)",
                                  "4 + 20 = 24 (left: 24)"});
  for (std::uint64_t seed = 0; seed < 100; ++seed) {
    for (const auto& s : bad.propose(request_for(problem, {}, 5, seed))) {
      CAPTURE(s.text);
      CHECK(legality(start, s.text) != "");
      CHECK(s.finish == FinishReason::StepEnd);
      CHECK(std::isfinite(s.logprob));
      CHECK(s.logprob < -std::log(36.0));
    }
    for (const auto& s : bad.propose(request_for(problem, three, 1, seed))) {
      CAPTURE(s.text);
      CHECK(is_answer_step(s.text));
      CHECK_FALSE(check_answer({4, 5, 6, 10}, s.text));
    }
  }

  // A middle rate gives a mix.
  const ProgrammaticGenerator some({.error_rate = 0.5});
  int legal = 0, illegal = 0;
  for (std::uint64_t seed = 0; seed < 40; ++seed)
    for (const auto& s : some.propose(request_for(problem, {}, 5, seed)))
      (legality(start, s.text).empty() ? legal : illegal)++;
  CHECK(legal > 20);
  CHECK(illegal > 20);
}

TEST_CASE("ProgrammaticGenerator: every corruption kind is illegal") {
  const Problem problem{"1", "1 1 4 6", std::nullopt};
  const ProgrammaticGenerator bad({.error_rate = 1.0});
  int not_left = 0, wrong_result = 0, wrong_left = 0;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    for (const auto& s : bad.propose(request_for(problem, {}, 3, seed))) {
      const auto why = legality({1, 1, 4, 6}, s.text);
      REQUIRE(why != "");
      if (why.find("not among") != std::string::npos) ++not_left;
      else if (why.find(", not ") != std::string::npos) ++wrong_result;
      else if (why.starts_with("left list")) ++wrong_left;
    }
  }
  CHECK(not_left > 0);
  CHECK(wrong_result > 0);
  CHECK(wrong_left > 0);
  CHECK(not_left + wrong_result + wrong_left == 600);
}

TEST_CASE("ProgrammaticGenerator: max_new_tokens truncates") {
  const Problem problem{"1", "4 5 6 10", std::nullopt};
  const ProgrammaticGenerator gen;
  auto request = request_for(problem, {}, 4, 77);
  const auto full = gen.propose(request);
  request.max_new_tokens = 10;
  const auto cut = gen.propose(request);
  REQUIRE(cut.size() == full.size());
  for (std::size_t i = 0; i < cut.size(); ++i) {
    CHECK(cut[i].text == full[i].text.substr(0, 10));
    CHECK(cut[i].num_tokens == 10);
    CHECK(cut[i].finish == FinishReason::Length);
  }
  request.max_new_tokens = 1000;
  for (const auto& s : gen.propose(request)) CHECK(s.finish == FinishReason::StepEnd);
  // Exactly at the limit: not cut.
  request.max_new_tokens = static_cast<std::int32_t>(full[0].text.size());
  CHECK(gen.propose(request)[0].finish == FinishReason::StepEnd);

  Tree tree;
  const auto three = chain(tree, {"10 - 6 = 4 (left: 4 4 5)", "4 * 5 = 20 (left: 4 20)",
                                  "4 + 20 = 24 (left: 24)"});
  auto answer = request_for(problem, three, 1, 0);
  answer.max_new_tokens = 12;
  const auto a = gen.propose(answer);
  REQUIRE(a.size() == 1);
  CHECK(a[0].text.size() == 12);
  CHECK(a[0].finish == FinishReason::Length);
}

TEST_CASE("ProgrammaticGenerator: parameters") {
  CHECK_THROWS_WITH_AS(ProgrammaticGenerator({.error_rate = 1.5}),
                       doctest::Contains("error_rate"), InvalidArgument);
  CHECK_THROWS_AS(ProgrammaticGenerator({.error_rate = -0.1}), InvalidArgument);
  CHECK_THROWS_AS(ProgrammaticGenerator({.error_rate = std::nan("")}), InvalidArgument);
  CHECK_NOTHROW(GeneratorParams{.error_rate = 1.0}.validate());
  CHECK(ProgrammaticGenerator({.max_batch_size = 8}).max_batch_size() == 8);
  const ProgrammaticGenerator gen;
  ExpandRequest r;
  CHECK_THROWS_AS(gen.propose(r), InvalidArgument);  // no problem
  const Problem bad{"1", "4 5 x 6", std::nullopt};
  CHECK_THROWS_AS(gen.propose(request_for(bad, {}, 1, 0)), ParseError);
}

TEST_CASE("OracleStepVerifier scores against the solver") {
  const OracleStepVerifier prm;
  CHECK(prm.name() == "game24-oracle");
  CHECK(prm.max_batch_size() == 0);
  CHECK(OracleStepVerifier(16).max_batch_size() == 16);
  const Problem problem{"1", "4 5 6 10", std::nullopt};
  Tree tree;
  auto score = [&](const TrajectoryView& t, std::int32_t first_new = 0) {
    StepScoreRequest r;
    r.problem = &problem;
    r.trajectory = t;
    r.first_new = first_new;
    const std::vector<StepScoreRequest> batch{r};
    const auto out = prm.score_steps(batch);
    REQUIRE(out.size() == 1);
    return out[0];
  };
  const auto solved = chain(tree, {"10 - 6 = 4 (left: 4 4 5)", "4 * 5 = 20 (left: 4 20)",
                                   "4 + 20 = 24 (left: 24)", "Answer: 4 + 5 * (10 - 6) = 24"});
  CHECK(score(solved) == std::vector<double>{1, 1, 1, 1});
  CHECK(score(solved, 2) == std::vector<double>{1, 1});
  CHECK(score(solved, 4).empty());
  // 4 + 5 = 9 leaves 6 9 10: legal, and the brute force says whether 24 is still reachable.
  const double v = brute_force_24(std::vector<double>{6, 9, 10}) ? 1.0 : 0.0;
  CHECK(score(chain(tree, {"4 + 5 = 9 (left: 6 9 10)"})) == std::vector<double>{v});
  // A dead end: legal but 24 is out of reach, then legal steps and a wrong answer.
  CHECK_FALSE(brute_force_24(std::vector<double>{1, 6, 10}));
  const auto dead = chain(tree, {"5 - 4 = 1 (left: 1 6 10)", "1 * 6 = 6 (left: 6 10)",
                                 "6 + 10 = 16 (left: 16)", "Answer: (5 - 4) * 6 + 10 = 24"});
  CHECK(score(dead) == std::vector<double>{0, 0, 0, 0});
  // An illegal step zeroes it and everything after it, even a correct answer.
  const auto illegal = chain(tree, {"10 - 6 = 5 (left: 4 5 5)", "4 * 5 = 20 (left: 5 20)",
                                    "Answer: 4 + 5 * (10 - 6) = 24"});
  CHECK(score(illegal) == std::vector<double>{0, 0, 0});
  // A correct answer straight away, and a wrong one.
  CHECK(score(chain(tree, {"Answer: (10 - 6) * 5 + 4 = 24"})) == std::vector<double>{1});
  CHECK(score(chain(tree, {"Answer: 4 * 6 = 24"})) == std::vector<double>{0});
  // Steps after an answer score 0.
  CHECK(score(chain(tree, {"Answer: (10 - 6) * 5 + 4 = 24", "4 + 5 = 9 (left: 6 9 10)"})) ==
        std::vector<double>{1, 0});
  CHECK_THROWS_AS(score(solved, 5), InvalidArgument);
  CHECK_THROWS_AS(score(solved, -1), InvalidArgument);
}

TEST_CASE("OracleStepVerifier agrees with an independent replay on generated trajectories") {
  const auto problems = load_csv(QSTAR_TEST_DATA, std::pair{901, 1000});
  const ProgrammaticGenerator gen({.error_rate = 0.25});
  const OracleStepVerifier prm;
  Tree tree;
  int checked = 0, ones = 0;
  for (std::size_t pi = 0; pi < problems.size(); ++pi) {
    const Problem& problem = problems[pi];
    const auto puzzle = parse_puzzle(problem.text);
    // Roll out one trajectory of up to 4 steps with the generator.
    NodeId node = Tree::root();
    for (int depth = 0; depth < 4; ++depth) {
      const auto steps = gen.propose(request_for(problem, tree.trajectory(node), 1,
                                                 derive_seed(17, pi, depth)));
      if (steps.empty()) break;
      node = tree.add_child(node, steps[0]);
      if (steps[0].finish == FinishReason::FinalAnswer) break;
    }
    const auto traj = tree.trajectory(node);
    StepScoreRequest r;
    r.problem = &problem;
    r.trajectory = traj;
    const std::vector<StepScoreRequest> batch{r};
    const auto scores = prm.score_steps(batch)[0];
    REQUIRE(scores.size() == traj.size());
    std::vector<std::string> texts;
    for (std::size_t i = 0; i < traj.size(); ++i) {
      texts.emplace_back(traj.text(i));
      double expected = 0.0;
      if (is_answer_step(texts.back())) {
        const std::vector<std::string> before(texts.begin(), texts.end() - 1);
        expected = state_after(puzzle, before) && check_answer(puzzle, texts.back()) ? 1.0 : 0.0;
      } else if (const auto state = state_after(puzzle, texts)) {
        expected = brute_force_24(*state) ? 1.0 : 0.0;
      }
      CAPTURE(problem.text);
      CAPTURE(texts.back());
      CHECK(scores[i] == expected);
      ++checked;
      ones += expected > 0 ? 1 : 0;
    }
  }
  CHECK(checked > 300);
  CHECK(ones > 0);
  CHECK(ones < checked);
}

TEST_CASE("OracleOutcomeVerifier") {
  const OracleOutcomeVerifier orm;
  CHECK(orm.max_batch_size() == 0);
  CHECK(OracleOutcomeVerifier(4).max_batch_size() == 4);
  const Problem problem{"1", "4 5 6 10", std::nullopt};
  Tree tree;
  auto request = [&](const TrajectoryView& t) {
    OutcomeRequest r;
    r.problem = &problem;
    r.trajectory = t;
    return r;
  };
  const std::vector<OutcomeRequest> batch{
      request(chain(tree, {"10 - 6 = 4 (left: 4 4 5)", "Answer: 4 + 5 * (10 - 6) = 24"})),
      request(chain(tree, {"Answer: 4 * 6 = 24"})),
      request(chain(tree, {"10 - 6 = 4 (left: 4 4 5)"})),
      request(tree.trajectory(Tree::root())),
  };
  CHECK(orm.score_outcomes(batch) == std::vector<double>{1, 0, 0, 0});
}

TEST_CASE("load_csv and parse_ranks") {
  const auto test_set = load_csv(QSTAR_TEST_DATA, parse_ranks("901-1000"));
  REQUIRE(test_set.size() == 100);
  CHECK(test_set.front().text == "4 5 6 10");
  CHECK(test_set.front().id == "901");
  CHECK(test_set.back().id == "1000");
  CHECK_FALSE(test_set.front().gold);
  const auto one = load_csv(QSTAR_TEST_DATA, parse_ranks("5"));
  REQUIRE(one.size() == 1);
  CHECK(one[0].id == "5");
  CHECK(load_csv(QSTAR_TEST_DATA).size() == 1000);

  CHECK(parse_ranks("901-1000") == std::pair{901, 1000});
  CHECK(parse_ranks(" 7 - 9 ") == std::pair{7, 9});
  CHECK(parse_ranks("5") == std::pair{5, 5});
  for (const char* bad : {"", "x", "10-5", "0-3", "5-", "-5", "1-2-3", "1.5", "99999999999"}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(parse_ranks(bad), doctest::Contains("--ranks"), InvalidArgument);
  }
  CHECK_THROWS_AS(load_csv(QSTAR_TEST_DATA, std::pair{5, 1}), InvalidArgument);
}

TEST_CASE("load_csv: file errors") {
  const std::string missing = "/nonexistent/qstar/24.csv";
  CHECK_THROWS_WITH_AS(load_csv(missing), doctest::Contains(missing.c_str()), IoError);

  {  // other columns, CRLF, quotes, a BOM, blank lines, no Rank column
    TempFile f("\xEF\xBB\xBFName,\"Puzzles\"\r\na,\"1 1 4 6\"\r\n\r\nb, 13 13 13 13 \r\n");
    const auto ps = load_csv(f.path.string());
    REQUIRE(ps.size() == 2);
    CHECK(ps[0].text == "1 1 4 6");
    CHECK(ps[0].id == "1");
    CHECK(ps[1].text == "13 13 13 13");
    CHECK(ps[1].id == "2");
  }
  {
    TempFile f("Rank,Puzzles\n");
    CHECK(load_csv(f.path.string()).empty());
  }
  {
    TempFile f("");
    CHECK_THROWS_WITH_AS(load_csv(f.path.string()),
                         doctest::Contains((f.path.string() + ":1:").c_str()), ParseError);
  }
  {
    TempFile f("Rank,Puzzle\n1,1 1 4 6\n");
    CHECK_THROWS_WITH_AS(load_csv(f.path.string()),
                         (f.path.string() + ":1: the header has no \"Puzzles\" column").c_str(),
                         ParseError);
  }
  {
    TempFile f("Rank,Puzzles\n1,1 1 4 6\n2,4 5 x 6\n");
    CHECK_THROWS_WITH_AS(
        load_csv(f.path.string()),
        (f.path.string() + ":3: puzzle \"4 5 x 6\": 'x' is not a number").c_str(), ParseError);
  }
  {
    TempFile f("Rank,Puzzles\n1,1 1 4 6\nseven,4 5 6 10\n");
    CHECK_THROWS_WITH_AS(load_csv(f.path.string()), doctest::Contains(":3: Rank 'seven'"),
                         ParseError);
  }
  {
    TempFile f("Rank,Puzzles,AMT\n1,1 1 4 6,3\n2\n");
    CHECK_THROWS_WITH_AS(load_csv(f.path.string()),
                         doctest::Contains(":3: expected at least 2 columns, got 1"), ParseError);
  }
  {  // a malformed row outside the requested ranks is still an error
    TempFile f("Rank,Puzzles\n1,1 1 4 6\n2,1 1 4 99\n");
    CHECK_THROWS_AS(load_csv(f.path.string(), std::pair{1, 1}), ParseError);
  }
}

}  // TEST_SUITE
