// Tests of score aggregation (aggregate.hpp) and answer voting (voting.hpp) against
// hand-computed cases. Scores are dyadic fractions (0.125, 0.25, 0.5, ...) wherever sums or
// products are compared exactly, so the arithmetic in the comments is exact in binary too.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qstar/core/aggregate.hpp"
#include "qstar/core/rng.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/core/voting.hpp"

using qstar::AggregateState;
using qstar::Aggregation;
using qstar::AnswerTally;
using qstar::Tree;
using qstar::VoteResult;
using qstar::VoteSample;
using qstar::Voting;

namespace {

double agg(std::vector<double> v, Aggregation rule, const qstar::CustomAggregation& c = {}) {
  return qstar::aggregate(std::span<const double>(v), rule, c);
}

VoteResult run_vote(const std::vector<VoteSample>& s, Voting rule, std::size_t k = 0) {
  return qstar::vote(std::span<const VoteSample>(s), rule, k);
}

VoteSample ans(const char* a, double score) { return VoteSample{std::string(a), score}; }
VoteSample none(double score) { return VoteSample{std::nullopt, score}; }

qstar::Step step_text(std::string text) {
  qstar::Step s;
  s.text = std::move(text);
  return s;
}

// The six samples of the "three rules, three winners" case (see the test below).
//   idx answer score
//    0    A    0.125
//    1    B    0.5
//    2    C    0.875
//    3    A    0.125
//    4    B    0.5
//    5    A    0.25
std::vector<VoteSample> six_samples() {
  return {ans("A", 0.125), ans("B", 0.5), ans("C", 0.875),
          ans("A", 0.125), ans("B", 0.5), ans("A", 0.25)};
}

void check_tally(const AnswerTally& t, const char* answer, int count, double weight,
                 double best_score, std::size_t best_index, std::size_t first_index) {
  INFO("tally of answer " << answer);
  CHECK(t.answer == answer);
  CHECK(t.count == count);
  CHECK(t.weight == weight);
  CHECK(t.best_score == best_score);
  CHECK(t.best_index == best_index);
  CHECK(t.first_index == first_index);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Aggregation
// ---------------------------------------------------------------------------------------

TEST_CASE("aggregate: min, prod, last, mean on a hand-computed list") {
  // scores 0.5, 0.25, 0.75, 1.0
  const std::vector<double> s{0.5, 0.25, 0.75, 1.0};
  // min = 0.25
  CHECK(agg(s, Aggregation::Min) == 0.25);
  // prod = 0.5 * 0.25 * 0.75 * 1.0 = 0.125 * 0.75 = 0.09375 (exact in binary)
  CHECK(agg(s, Aggregation::Prod) == 0.09375);
  // last = 1.0
  CHECK(agg(s, Aggregation::Last) == 1.0);
  // mean = (0.5 + 0.25 + 0.75 + 1.0) / 4 = 2.5 / 4 = 0.625
  CHECK(agg(s, Aggregation::Mean) == 0.625);
}

TEST_CASE("aggregate: a single score is every rule's answer") {
  for (Aggregation r : {Aggregation::Min, Aggregation::Prod, Aggregation::Last, Aggregation::Mean})
    CHECK(agg({0.3}, r) == doctest::Approx(0.3));
}

TEST_CASE("aggregate: the rules disagree where they should") {
  // A trajectory with one bad middle step: 0.9, 0.1, 0.9
  //   min  = 0.1            (Math-Shepherd: the weakest step)
  //   prod = 0.9*0.1*0.9 = 0.081
  //   last = 0.9            (ignores the bad step)
  //   mean = 1.9/3 = 0.6333...
  const std::vector<double> s{0.9, 0.1, 0.9};
  CHECK(agg(s, Aggregation::Min) == doctest::Approx(0.1));
  CHECK(agg(s, Aggregation::Prod) == doctest::Approx(0.081));
  CHECK(agg(s, Aggregation::Last) == doctest::Approx(0.9));
  CHECK(agg(s, Aggregation::Mean) == doctest::Approx(1.9 / 3.0));
}

TEST_CASE("aggregate: empty lists score 0, except prod's empty product 1") {
  CHECK(agg({}, Aggregation::Min) == 0.0);
  CHECK(agg({}, Aggregation::Prod) == 1.0);
  CHECK(agg({}, Aggregation::Last) == 0.0);
  CHECK(agg({}, Aggregation::Mean) == 0.0);
  // custom rules see the empty span
  std::size_t seen = 99;
  CHECK(agg({}, Aggregation::Custom, [&](std::span<const double> v) {
          seen = v.size();
          return -1.0;
        }) == -1.0);
  CHECK(seen == 0);
}

TEST_CASE("aggregate: custom callable receives the scores in order") {
  std::vector<double> seen;
  // max of 0.5, 0.25, 0.75 = 0.75
  const double r = agg({0.5, 0.25, 0.75}, Aggregation::Custom, [&](std::span<const double> v) {
    seen.assign(v.begin(), v.end());
    double m = v[0];
    for (double x : v) m = std::max(m, x);
    return m;
  });
  CHECK(r == 0.75);
  CHECK(seen == std::vector<double>{0.5, 0.25, 0.75});
}

TEST_CASE("aggregate: custom without a callable throws InvalidArgument naming 'custom'") {
  try {
    agg({0.5}, Aggregation::Custom);
    FAIL("no exception");
  } catch (const qstar::InvalidArgument& e) {
    CHECK(std::string(e.what()).find("custom") != std::string::npos);
  }
}

TEST_CASE("aggregate: names round-trip through to_string / aggregation_from_string") {
  for (Aggregation r : {Aggregation::Min, Aggregation::Prod, Aggregation::Last, Aggregation::Mean,
                        Aggregation::Custom}) {
    auto back = qstar::aggregation_from_string(qstar::to_string(r));
    REQUIRE(back.has_value());
    CHECK(*back == r);
  }
  CHECK(std::string(qstar::to_string(Aggregation::Min)) == "min");
  CHECK(std::string(qstar::to_string(Aggregation::Prod)) == "prod");
  CHECK_FALSE(qstar::aggregation_from_string("max").has_value());
  CHECK_FALSE(qstar::aggregation_from_string("").has_value());
  CHECK_FALSE(qstar::aggregation_from_string("Min").has_value());
}

TEST_CASE("aggregate_path: walks root -> leaf, skipping unscored steps and the root") {
  // root(score 0.0625, ignored: the root is no step)
  //  └ a (0.5)
  //     └ b (unscored)
  //        └ c (0.25)
  //           └ d (0.75)
  //  └ e (unscored), sibling of a
  Tree t;
  t[Tree::root()].score = 0.0625;
  const auto a = t.add_child(Tree::root(), step_text("a"));
  const auto b = t.add_child(a, step_text("b"));
  const auto c = t.add_child(b, step_text("c"));
  const auto d = t.add_child(c, step_text("d"));
  const auto e = t.add_child(Tree::root(), step_text("e"));
  t[a].score = 0.5;
  t[c].score = 0.25;
  t[d].score = 0.75;
  REQUIRE_FALSE(t[b].scored());

  // path to d: scored steps 0.5, 0.25, 0.75 (b skipped)
  CHECK(qstar::aggregate_path(t, d, Aggregation::Min) == 0.25);
  CHECK(qstar::aggregate_path(t, d, Aggregation::Prod) == 0.09375);  // 0.5*0.25*0.75
  CHECK(qstar::aggregate_path(t, d, Aggregation::Last) == 0.75);
  CHECK(qstar::aggregate_path(t, d, Aggregation::Mean) == 0.5);  // 1.5 / 3
  std::vector<double> seen;
  qstar::aggregate_path(t, d, Aggregation::Custom, [&](std::span<const double> v) {
    seen.assign(v.begin(), v.end());
    return 0.0;
  });
  CHECK(seen == std::vector<double>{0.5, 0.25, 0.75});  // root first

  // path to b: only a is scored
  CHECK(qstar::aggregate_path(t, b, Aggregation::Mean) == 0.5);
  CHECK(qstar::aggregate_path(t, b, Aggregation::Last) == 0.5);
  // path to c: a, c -> last 0.25, mean 0.375
  CHECK(qstar::aggregate_path(t, c, Aggregation::Last) == 0.25);
  CHECK(qstar::aggregate_path(t, c, Aggregation::Mean) == 0.375);

  // a path with no scored step, and the root itself: the empty-list values
  for (auto leaf : {e, Tree::root()}) {
    CHECK(qstar::aggregate_path(t, leaf, Aggregation::Min) == 0.0);
    CHECK(qstar::aggregate_path(t, leaf, Aggregation::Prod) == 1.0);
    CHECK(qstar::aggregate_path(t, leaf, Aggregation::Last) == 0.0);
    CHECK(qstar::aggregate_path(t, leaf, Aggregation::Mean) == 0.0);
  }
}

TEST_CASE("aggregate_path: a detached (rollout) leaf aggregates through its parent") {
  Tree t;
  const auto a = t.add_child(Tree::root(), step_text("a"));
  const auto r = t.add_child(a, step_text("rollout"), /*detached=*/true);
  t[a].score = 0.5;
  t[r].score = 0.25;
  CHECK(qstar::aggregate_path(t, r, Aggregation::Prod) == 0.125);
  CHECK(qstar::aggregate_path(t, r, Aggregation::Last) == 0.25);
}

TEST_CASE("aggregate_path: paths deeper than the 64-entry stack buffer") {
  // A chain of 200 steps; step i (1-based) scores 1 - i/1024 except every third, unscored.
  Tree t;
  qstar::NodeId cur = Tree::root();
  std::vector<double> expected;
  for (int i = 1; i <= 200; ++i) {
    cur = t.add_child(cur, step_text("s"));
    if (i % 3 != 0) {
      t[cur].score = 1.0 - i / 1024.0;
      expected.push_back(t[cur].score);
    }
  }
  for (Aggregation r : {Aggregation::Min, Aggregation::Prod, Aggregation::Last, Aggregation::Mean})
    CHECK(qstar::aggregate_path(t, cur, r) == qstar::aggregate(expected, r));
  std::vector<double> seen;
  qstar::aggregate_path(t, cur, Aggregation::Custom, [&](std::span<const double> v) {
    seen.assign(v.begin(), v.end());
    return 0.0;
  });
  CHECK(seen == expected);
  // exactly 64 steps: the stack-buffer edge
  Tree t64;
  cur = Tree::root();
  for (int i = 1; i <= 64; ++i) {
    cur = t64.add_child(cur, step_text("s"));
    t64[cur].score = 0.5;
  }
  CHECK(qstar::aggregate_path(t64, cur, Aggregation::Prod) == std::ldexp(1.0, -64));
  CHECK(qstar::aggregate_path(t64, cur, Aggregation::Mean) == 0.5);
}

TEST_CASE("AggregateState: the empty state matches aggregate() of an empty list") {
  AggregateState st;
  for (Aggregation r : {Aggregation::Min, Aggregation::Prod, Aggregation::Last, Aggregation::Mean})
    CHECK(st.value(r) == agg({}, r));
  CHECK(st.value(Aggregation::Custom) == 0.0);
}

TEST_CASE("AggregateState: incremental pushes equal aggregate() of every prefix") {
  SUBCASE("hand-computed") {
    // push 0.5, 0.25, 0.75
    AggregateState st;
    st.push(0.5);
    CHECK(st.value(Aggregation::Min) == 0.5);
    CHECK(st.value(Aggregation::Prod) == 0.5);
    st.push(0.25);
    CHECK(st.value(Aggregation::Min) == 0.25);
    CHECK(st.value(Aggregation::Prod) == 0.125);
    CHECK(st.value(Aggregation::Mean) == 0.375);
    st.push(0.75);
    CHECK(st.value(Aggregation::Min) == 0.25);
    CHECK(st.value(Aggregation::Prod) == 0.09375);
    CHECK(st.value(Aggregation::Last) == 0.75);
    CHECK(st.value(Aggregation::Mean) == 0.5);
    CHECK(st.count == 3);
  }
  SUBCASE("a first score above 1 is the min (the initial 1.0 is not a score)") {
    AggregateState st;
    st.push(2.0);
    CHECK(st.value(Aggregation::Min) == 2.0);
    st.push(3.0);
    CHECK(st.value(Aggregation::Min) == 2.0);
  }
  SUBCASE("random sequences") {
    qstar::Rng rng(7);
    for (int trial = 0; trial < 50; ++trial) {
      AggregateState st;
      std::vector<double> v;
      const int n = 1 + static_cast<int>(rng.below(20));
      for (int i = 0; i < n; ++i) {
        const double s = rng.uniform();
        st.push(s);
        v.push_back(s);
        for (Aggregation r :
             {Aggregation::Min, Aggregation::Prod, Aggregation::Last, Aggregation::Mean})
          CHECK(st.value(r) == doctest::Approx(agg(v, r)).epsilon(1e-12));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Voting
// ---------------------------------------------------------------------------------------

TEST_CASE("vote: names round-trip through to_string / voting_from_string") {
  for (Voting v : {Voting::Naive, Voting::Majority, Voting::Weighted, Voting::TopKMajority}) {
    auto back = qstar::voting_from_string(qstar::to_string(v));
    REQUIRE(back.has_value());
    CHECK(*back == v);
  }
  CHECK(qstar::voting_from_string("top-k") == Voting::TopKMajority);
  CHECK(qstar::voting_from_string("topk-majority") == Voting::TopKMajority);
  CHECK_FALSE(qstar::voting_from_string("plurality").has_value());
}

TEST_CASE("vote: naive, majority and weighted each pick a different answer") {
  // idx answer score      per answer:
  //  0    A    0.125       A: idx 0,3,5  count 3  weight 0.125+0.125+0.25 = 0.5
  //  1    B    0.5            best 0.25 @5, first 0
  //  2    C    0.875       B: idx 1,4    count 2  weight 0.5+0.5 = 1.0
  //  3    A    0.125          best 0.5 @1 (idx 4 ties, lower index kept), first 1
  //  4    B    0.5         C: idx 2      count 1  weight 0.875
  //  5    A    0.25           best 0.875 @2, first 2
  const auto s = six_samples();

  SUBCASE("naive: highest single score 0.875 -> C; ranked C (0.875), B (0.5), A (0.25)") {
    const auto r = run_vote(s, Voting::Naive);
    REQUIRE(r.answer.has_value());
    CHECK(*r.answer == "C");
    REQUIRE(r.tallies.size() == 3);
    check_tally(r.tallies[0], "C", 1, 0.875, 0.875, 2, 2);
    check_tally(r.tallies[1], "B", 2, 1.0, 0.5, 1, 1);
    check_tally(r.tallies[2], "A", 3, 0.5, 0.25, 5, 0);
  }
  SUBCASE("majority: most frequent, 3 > 2 > 1 -> A; ranked A, B, C") {
    const auto r = run_vote(s, Voting::Majority);
    REQUIRE(r.answer.has_value());
    CHECK(*r.answer == "A");
    REQUIRE(r.tallies.size() == 3);
    check_tally(r.tallies[0], "A", 3, 0.5, 0.25, 5, 0);
    check_tally(r.tallies[1], "B", 2, 1.0, 0.5, 1, 1);
    check_tally(r.tallies[2], "C", 1, 0.875, 0.875, 2, 2);
  }
  SUBCASE("weighted: summed scores 1.0 > 0.875 > 0.5 -> B; ranked B, C, A") {
    const auto r = run_vote(s, Voting::Weighted);
    REQUIRE(r.answer.has_value());
    CHECK(*r.answer == "B");
    REQUIRE(r.tallies.size() == 3);
    check_tally(r.tallies[0], "B", 2, 1.0, 0.5, 1, 1);
    check_tally(r.tallies[1], "C", 1, 0.875, 0.875, 2, 2);
    check_tally(r.tallies[2], "A", 3, 0.5, 0.25, 5, 0);
  }
}

TEST_CASE("vote: top-k majority (Cobbe et al.) over the k best-scored samples") {
  // Samples ranked by score desc, then index asc:
  //   rank: 1:idx2 C .875  2:idx1 B .5  3:idx4 B .5  4:idx5 A .25  5:idx0 A .125  6:idx3 A .125
  const auto s = six_samples();
  auto topk = [&](std::size_t k) { return run_vote(s, Voting::TopKMajority, k); };

  // k=1: {C} -> C
  CHECK(*topk(1).answer == "C");
  // k=2: {C, B} -> 1 vs 1, tie on count; best score C .875 > B .5 -> C
  CHECK(*topk(2).answer == "C");
  // k=3: {C, B, B} -> B 2 votes
  {
    const auto r = topk(3);
    CHECK(*r.answer == "B");
    REQUIRE(r.tallies.size() == 2);  // A never voted
    check_tally(r.tallies[0], "B", 2, 1.0, 0.5, 1, 1);
    check_tally(r.tallies[1], "C", 1, 0.875, 0.875, 2, 2);
  }
  // k=4: {C, B, B, A} -> B 2
  CHECK(*topk(4).answer == "B");
  // k=5: {C, B, B, A@5, A@0} -> A 2, B 2 tie; best score B .5 > A .25 -> B.
  //      The cut falls between idx0 and idx3 (both 0.125): the lower index gets in.
  {
    const auto r = topk(5);
    CHECK(*r.answer == "B");
    REQUIRE(r.tallies.size() == 3);
    check_tally(r.tallies[0], "B", 2, 1.0, 0.5, 1, 1);
    check_tally(r.tallies[1], "A", 2, 0.375, 0.25, 5, 0);  // 0.25 + 0.125, idx 5 and 0
    check_tally(r.tallies[2], "C", 1, 0.875, 0.875, 2, 2);
  }
  // k=6: everyone -> A 3 (plain majority)
  CHECK(*topk(6).answer == "A");
  // k=0 means all: same as majority
  {
    const auto r0 = topk(0);
    const auto rm = run_vote(s, Voting::Majority);
    CHECK(*r0.answer == "A");
    REQUIRE(r0.tallies.size() == rm.tallies.size());
    for (std::size_t i = 0; i < rm.tallies.size(); ++i) {
      CHECK(r0.tallies[i].answer == rm.tallies[i].answer);
      CHECK(r0.tallies[i].count == rm.tallies[i].count);
    }
  }
  // k larger than the sample count: all of them
  CHECK(*topk(7).answer == "A");
  CHECK(*topk(1000).answer == "A");
  CHECK(topk(1000).tallies.size() == 3);
  CHECK(topk(1000).tallies[0].count == 3);
}

TEST_CASE("vote: top_k is ignored by the other rules") {
  const auto s = six_samples();
  CHECK(*run_vote(s, Voting::Majority, 1).answer == "A");
  CHECK(*run_vote(s, Voting::Weighted, 1).answer == "B");
  CHECK(*run_vote(s, Voting::Naive, 4).answer == "C");
  CHECK(run_vote(s, Voting::Majority, 1).tallies.size() == 3);
}

TEST_CASE("vote: majority tie goes to the higher best score, not the earlier answer") {
  // idx answer score   Y: count 2, best 0.5 @0 (idx 2 ties, lower kept), first 0
  //  0    Y    0.5     X: count 2, best 0.75 @3, first 1
  //  1    X    0.25    counts tie 2-2 -> best score X .75 > Y .5 -> X,
  //  2    Y    0.5     although Y appears first.
  //  3    X    0.75    Weighted: X 0.25+0.75 = 1.0, Y 0.5+0.5 = 1.0 -> tie -> X as well.
  const std::vector<VoteSample> s{ans("Y", 0.5), ans("X", 0.25), ans("Y", 0.5), ans("X", 0.75)};
  const auto m = run_vote(s, Voting::Majority);
  CHECK(*m.answer == "X");
  REQUIRE(m.tallies.size() == 2);
  check_tally(m.tallies[0], "X", 2, 1.0, 0.75, 3, 1);
  check_tally(m.tallies[1], "Y", 2, 1.0, 0.5, 0, 0);
  const auto w = run_vote(s, Voting::Weighted);
  CHECK(*w.answer == "X");
  CHECK(w.tallies[1].answer == "Y");
}

TEST_CASE("vote: tie on count and best score goes to the lower index of the best sample") {
  // idx answer score   P: count 2, weight 1.25, best 0.75 @2, first 0
  //  0    P    0.5     Q: count 2, weight 1.25, best 0.75 @1, first 1
  //  1    Q    0.75    count tie, weight tie, best-score tie -> best_index 1 < 2 -> Q,
  //  2    P    0.75    even though P's first sample (idx 0) comes before Q's (idx 1).
  //  3    Q    0.5
  const std::vector<VoteSample> s{ans("P", 0.5), ans("Q", 0.75), ans("P", 0.75), ans("Q", 0.5)};
  for (Voting rule : {Voting::Majority, Voting::Weighted, Voting::Naive, Voting::TopKMajority}) {
    INFO("rule " << qstar::to_string(rule));
    const auto r = run_vote(s, rule);
    CHECK(*r.answer == "Q");
    REQUIRE(r.tallies.size() == 2);
    check_tally(r.tallies[0], "Q", 2, 1.25, 0.75, 1, 1);
    check_tally(r.tallies[1], "P", 2, 1.25, 0.75, 2, 0);
  }
}

TEST_CASE("vote: naive ties between equal top scores go to the lowest index") {
  // idx 0 "low" 0.25, idx 1 "first" 0.75, idx 2 "second" 0.75 -> "first"
  const std::vector<VoteSample> s{ans("low", 0.25), ans("first", 0.75), ans("second", 0.75)};
  const auto r = run_vote(s, Voting::Naive);
  CHECK(*r.answer == "first");
  REQUIRE(r.tallies.size() == 3);
  CHECK(r.tallies[1].answer == "second");
  CHECK(r.tallies[2].answer == "low");
  // Same scores, the order of the samples swapped -> the other answer wins.
  const std::vector<VoteSample> s2{ans("low", 0.25), ans("second", 0.75), ans("first", 0.75)};
  CHECK(*run_vote(s2, Voting::Naive).answer == "second");
}

TEST_CASE("vote: samples without an answer never win and are not tallied") {
  // idx answer score
  //  0    -    1.0     no answer: excluded, even from the top-k ranking
  //  1    -    0.875
  //  2    -    0.875
  //  3    M    0.125
  //  4    N    0.25
  // naive: N (0.25 > 0.125); majority: 1-1 tie -> best score N; weighted: N 0.25 > M 0.125.
  // top-1: the best-scored answered sample is idx 4 -> N.
  const std::vector<VoteSample> s{none(1.0), none(0.875), none(0.875), ans("M", 0.125),
                                  ans("N", 0.25)};
  for (Voting rule : {Voting::Naive, Voting::Majority, Voting::Weighted, Voting::TopKMajority}) {
    INFO("rule " << qstar::to_string(rule));
    const auto r = run_vote(s, rule, 1);
    REQUIRE(r.answer.has_value());
    CHECK(*r.answer == "N");
    for (const auto& t : r.tallies) {
      CHECK(t.best_index >= 3);
      CHECK(t.first_index >= 3);
    }
  }
  const auto m = run_vote(s, Voting::Majority);
  REQUIRE(m.tallies.size() == 2);
  check_tally(m.tallies[0], "N", 1, 0.25, 0.25, 4, 4);
  check_tally(m.tallies[1], "M", 1, 0.125, 0.125, 3, 3);
  // top-1 with the unanswered samples ranked above: still only N votes.
  CHECK(run_vote(s, Voting::TopKMajority, 1).tallies.size() == 1);
}

TEST_CASE("vote: an empty answer string is an answer, unlike nullopt") {
  const std::vector<VoteSample> s{ans("", 0.5), none(0.9)};
  const auto r = run_vote(s, Voting::Naive);
  REQUIRE(r.answer.has_value());
  CHECK(r.answer->empty());
}

TEST_CASE("vote: no sample with an answer -> no answer, no tallies") {
  const std::vector<VoteSample> s{none(0.9), none(0.5), none(0.1)};
  for (Voting rule : {Voting::Naive, Voting::Majority, Voting::Weighted, Voting::TopKMajority}) {
    INFO("rule " << qstar::to_string(rule));
    const auto r = run_vote(s, rule, 2);
    CHECK_FALSE(r.answer.has_value());
    CHECK(r.tallies.empty());
  }
  const std::vector<VoteSample> empty;
  for (Voting rule : {Voting::Naive, Voting::Majority, Voting::Weighted, Voting::TopKMajority}) {
    const auto r = run_vote(empty, rule);
    CHECK_FALSE(r.answer.has_value());
    CHECK(r.tallies.empty());
  }
}

TEST_CASE("vote: one sample wins under every rule") {
  const std::vector<VoteSample> s{ans("42", 0.3)};
  for (Voting rule : {Voting::Naive, Voting::Majority, Voting::Weighted, Voting::TopKMajority}) {
    const auto r = run_vote(s, rule, 1);
    CHECK(*r.answer == "42");
    REQUIRE(r.tallies.size() == 1);
    check_tally(r.tallies[0], "42", 1, 0.3, 0.3, 0, 0);
  }
}

TEST_CASE("vote: weighted beats a larger count of low scores") {
  // 4 x "low" at 0.125 = 0.5 total; 1 x "high" at 0.625 -> weighted "high", majority "low".
  const std::vector<VoteSample> s{ans("low", 0.125), ans("low", 0.125), ans("high", 0.625),
                                  ans("low", 0.125), ans("low", 0.125)};
  CHECK(*run_vote(s, Voting::Weighted).answer == "high");
  CHECK(*run_vote(s, Voting::Majority).answer == "low");
  const auto w = run_vote(s, Voting::Weighted);
  check_tally(w.tallies[0], "high", 1, 0.625, 0.625, 2, 2);
  check_tally(w.tallies[1], "low", 4, 0.5, 0.125, 0, 0);
}

TEST_CASE("vote: tallies hold every distinct answer, ranked, counts summing to the voters") {
  qstar::Rng rng(2024);
  for (int trial = 0; trial < 30; ++trial) {
    std::vector<VoteSample> s;
    const int n = 1 + static_cast<int>(rng.below(40));
    int answered = 0;
    for (int i = 0; i < n; ++i) {
      if (rng.below(5) == 0) {
        s.push_back(none(rng.uniform()));
      } else {
        s.push_back(VoteSample{std::to_string(rng.below(6)), rng.uniform()});
        ++answered;
      }
    }
    for (Voting rule : {Voting::Naive, Voting::Majority, Voting::Weighted}) {
      const auto r = run_vote(s, rule);
      int total = 0;
      for (const auto& t : r.tallies) {
        total += t.count;
        CHECK(t.first_index <= t.best_index);
        CHECK(s[t.best_index].answer == t.answer);
        CHECK(s[t.first_index].answer == t.answer);
        CHECK(s[t.best_index].score == t.best_score);
      }
      CHECK(total == answered);
      CHECK(r.answer.has_value() == (answered > 0));
      for (std::size_t i = 1; i < r.tallies.size(); ++i) {
        const auto& a = r.tallies[i - 1];
        const auto& b = r.tallies[i];
        if (rule == Voting::Majority) CHECK(a.count >= b.count);
        if (rule == Voting::Weighted) CHECK(a.weight >= b.weight);
        if (rule == Voting::Naive) CHECK(a.best_score >= b.best_score);
      }
    }
  }
}
