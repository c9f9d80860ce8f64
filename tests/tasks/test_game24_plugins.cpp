// Game of 24 plug-ins: the programmatic generator (legal, deterministic, batch-invariant
// proposals; corruption; truncation) and the oracle step/outcome verifiers against an
// independent replay.
#include <doctest/doctest.h>

#include <set>

#include "tasks/game24_helpers.hpp"

TEST_SUITE("game24") {

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

}  // TEST_SUITE
