// The Math-Shepherd rollout labeller with a scripted generator: exact soft / hard labels,
// the number of batched generator calls, the depth limit and batch invariance.
#include <doctest/doctest.h>

#include <qstar/tasks/game24.hpp>
#include <qstar/train/labeller.hpp>

#include <string>
#include <vector>

namespace {
using namespace qstar;

// Puzzle "1 2 3 4". The script (ignores seeds; depends on the prefix and, for a request
// with several candidates, on the candidate's index c):
//   depth 0: A (c even) or X (c odd)
//   depth 1: after A: B (c even) or W (c odd); after X: Y
//   depth 2: after B: C; otherwise Z
//   depth 3: ANS_OK when the prefix is A B ..., else ANS_BAD
const std::string A = "1 * 2 = 2 (left: 2 3 4)", X = "1 + 2 = 3 (left: 3 3 4)";
const std::string B = "2 * 3 = 6 (left: 4 6)", W = "2 + 3 = 5 (left: 4 5)", Y = "3 + 3 = 6 (left: 4 6)";
const std::string C = "4 * 6 = 24 (left: 24)", Z = "4 + 6 = 10 (left: 10)";
const std::string ANS_OK = "Answer: 1 * 2 * 3 * 4 = 24", ANS_BAD = "Answer: 1 + 2 + 3 + 4 = 24";

struct ScriptedGenerator {
  int calls = 0;
  std::size_t largest = 0;
  std::size_t cap = 0;
  std::size_t max_batch_size() const { return cap; }
  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> batch) {
    ++calls;
    largest = std::max(largest, batch.size());
    std::vector<std::vector<Step>> out;
    for (const auto& r : batch) {
      std::vector<std::string> prefix;
      for (std::size_t i = 0; i < r.prefix.size(); ++i) prefix.emplace_back(r.prefix.text(i));
      std::vector<Step> steps;
      for (int c = 0; c < r.num_candidates; ++c) {
        std::string t;
        const std::size_t d = prefix.size();
        if (d == 0) t = c % 2 == 0 ? A : X;
        else if (d == 1) t = prefix[0] == A ? (c % 2 == 0 ? B : W) : Y;
        else if (d == 2) t = prefix[1] == B ? C : Z;
        else t = (prefix[0] == A && prefix[1] == B) ? ANS_OK : ANS_BAD;
        Step s;
        s.text = t;
        s.num_tokens = static_cast<std::int32_t>(t.size());
        s.finish = t.starts_with("Answer:") ? FinishReason::FinalAnswer : FinishReason::StepEnd;
        steps.push_back(std::move(s));
      }
      out.push_back(std::move(steps));
    }
    return out;
  }
};

std::vector<Step> steps_of(const std::vector<std::string>& texts) {
  std::vector<Step> out;
  for (const auto& t : texts) {
    Step s;
    s.text = t;
    s.num_tokens = static_cast<std::int32_t>(t.size());
    s.finish = t.starts_with("Answer:") ? FinishReason::FinalAnswer : FinishReason::StepEnd;
    out.push_back(s);
  }
  return out;
}

TEST_CASE("labeller: exact Math-Shepherd labels with a scripted generator") {
  const std::vector<Problem> problems{{"p", "1 2 3 4", std::nullopt}};
  const game24::Game24Task task;
  const std::vector<train::Solution> sols{
      {0, steps_of({A, B, C, ANS_OK})},
      {0, steps_of({A, W, Z, ANS_BAD})},
      {0, steps_of({X, Y, Z, ANS_BAD})},
  };
  train::LabelParams lp;
  lp.rollouts = 3;
  lp.max_depth = 6;
  ScriptedGenerator gen;
  const auto r = train::label_steps(std::span<const Problem>(problems), std::span<const train::Solution>(sols),
                                    task, gen, lp, 42);
  REQUIRE(r.labels.size() == 3);
  auto soft = [&](std::size_t s) {
    std::vector<double> v;
    for (const auto& l : r.labels[s]) v.push_back(l.soft);
    return v;
  };
  auto hard = [&](std::size_t s) {
    std::vector<bool> v;
    for (const auto& l : r.labels[s]) v.push_back(l.hard);
    return v;
  };
  // Solution 0: from [A] the 3 candidates are B, W, B -> 2 of 3 reach 24; from [A, B] and
  // [A, B, C] every rollout does; the answer is correct.
  CHECK(soft(0) == std::vector<double>{2.0 / 3.0, 1.0, 1.0, 1.0});
  CHECK(hard(0) == std::vector<bool>{true, true, true, true});
  CHECK(r.labels[0][0].correct == 2);
  CHECK(r.labels[0][0].rollouts == 3);
  CHECK(r.labels[0][3].rollouts == 0);  // terminal: its own answer, no rollouts
  // Solution 1: step 0 is the same prefix [A] (same labels); after [A, W] nothing works.
  CHECK(soft(1) == std::vector<double>{2.0 / 3.0, 0.0, 0.0, 0.0});
  CHECK(hard(1) == std::vector<bool>{true, false, false, false});
  // Solution 2: X leads nowhere.
  CHECK(soft(2) == std::vector<double>{0.0, 0.0, 0.0, 0.0});
  CHECK(hard(2) == std::vector<bool>{false, false, false, false});
  // One batched call per rollout depth: the 9 non-terminal prefixes (3 candidates each) in
  // the first call, then every running rollout together: the 18 rollouts of the depth-1 and
  // depth-2 prefixes, then the 9 of the depth-1 prefixes.
  CHECK(gen.calls == 3);
  CHECK(r.generator_calls == 3);
  CHECK(gen.largest == 18);
  CHECK(r.generator_requests == 9 + 18 + 9);
  CHECK(r.generated_steps == 9 * 3 + 18 + 9);

  SUBCASE("the depth limit fails rollouts that do not finish") {
    train::LabelParams short_lp = lp;
    short_lp.max_depth = 3;  // [A] + 2 more steps: no room for the answer
    ScriptedGenerator g2;
    const auto r2 = train::label_steps(std::span<const Problem>(problems),
                                       std::span<const train::Solution>(sols), task, g2, short_lp, 42);
    CHECK(r2.labels[0][0].soft == 0.0);
    CHECK(r2.labels[0][1].soft == 0.0);  // [A, B] + C reaches depth 3 without an answer
    CHECK(r2.labels[0][2].soft == 0.0);  // [A, B, C] is at the limit: no rollout at all
    CHECK(r2.labels[0][3].soft == 1.0);  // the answer step is still checked
  }
  SUBCASE("labels do not depend on the batch size") {
    ScriptedGenerator g3;
    g3.cap = 2;
    const auto r3 = train::label_steps(std::span<const Problem>(problems),
                                       std::span<const train::Solution>(sols), task, g3, lp, 42);
    CHECK(g3.largest <= 2);
    CHECK(g3.calls > 3);
    for (std::size_t s = 0; s < 3; ++s)
      for (std::size_t i = 0; i < 4; ++i) CHECK(r3.labels[s][i].soft == r.labels[s][i].soft);
  }
  SUBCASE("progress: one report per generator call, waves of 9, 18 and 9 requests") {
    ScriptedGenerator g4;
    g4.cap = 5;
    std::vector<train::LabelProgress> seen;
    train::LabelParams plp = lp;
    plp.progress = [&](const train::LabelProgress& p) { seen.push_back(p); };
    const auto r4 = train::label_steps(std::span<const Problem>(problems),
                                       std::span<const train::Solution>(sols), task, g4, plp, 42);
    // 9 requests in calls of <= 5 (2 calls), 18 (4 calls), 9 (2 calls).
    REQUIRE(seen.size() == 8);
    CHECK(static_cast<std::int64_t>(seen.size()) == r4.generator_calls);
    const std::vector<int> waves{0, 0, 1, 1, 1, 1, 2, 2};
    const std::vector<std::size_t> done{5, 9, 5, 10, 15, 18, 5, 9};
    const std::vector<std::size_t> total{9, 9, 18, 18, 18, 18, 9, 9};
    for (std::size_t i = 0; i < seen.size(); ++i) {
      CHECK(seen[i].wave == waves[i]);
      CHECK(seen[i].wave_done == done[i]);
      CHECK(seen[i].wave_total == total[i]);
      CHECK(seen[i].generator_calls == static_cast<std::int64_t>(i) + 1);
    }
    CHECK(seen.back().generated_steps == r4.generated_steps);
    for (std::size_t s = 0; s < 3; ++s)
      for (std::size_t i = 0; i < 4; ++i) CHECK(r4.labels[s][i].soft == r.labels[s][i].soft);
  }
  SUBCASE("bad input") {
    train::LabelParams bad = lp;
    bad.rollouts = 0;
    CHECK_THROWS_WITH_AS(train::label_steps(std::span<const Problem>(problems),
                                            std::span<const train::Solution>(sols), task, gen, bad, 1),
                         doctest::Contains("LabelParams.rollouts"), InvalidArgument);
    const std::vector<train::Solution> stray{{5, steps_of({A})}};
    CHECK_THROWS_AS(train::label_steps(std::span<const Problem>(problems),
                                       std::span<const train::Solution>(stray), task, gen, lp, 1),
                    InvalidArgument);
  }
}

TEST_CASE("labeller: sample_solutions batches every unfinished solution per call") {
  const std::vector<Problem> problems{{"p", "1 2 3 4", std::nullopt}, {"q", "1 2 3 4", std::nullopt}};
  const game24::Game24Task task;
  ScriptedGenerator gen;
  train::SampleParams sp;
  sp.per_problem = 2;
  const auto sols = train::sample_solutions(std::span<const Problem>(problems), task, gen, sp, 3);
  REQUIRE(sols.size() == 4);
  for (const auto& s : sols) {
    // num_candidates = 1, so candidate 0 every time: A, B, C, ANS_OK.
    REQUIRE(s.steps.size() == 4);
    CHECK(s.steps[0].text == A);
    CHECK(s.steps[3].text == ANS_OK);
    CHECK(s.finished);
    CHECK(s.correct);
  }
  CHECK(sols[2].problem == 1);
  CHECK(gen.calls == 4);
  CHECK(gen.largest == 4);
}

}  // namespace
