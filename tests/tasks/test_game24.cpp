// Game of 24: exact arithmetic, the ToT step format, expressions, the solver, the task and
// the CSV loader, each against an exact oracle (hand-checked values, an independent
// floating-point brute force, the dataset). The programmatic generator and the oracle
// verifiers: test_game24_plugins.cpp.
#include <doctest/doctest.h>

#include <set>

#include "tasks/game24_helpers.hpp"


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
