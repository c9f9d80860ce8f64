// Synthetic Game of 24 training data: the multiset universe, the train / dev / test
// separation (no multiset of ranks 901-1000 of the repo's 24.csv in training or dev data),
// and the traces' format and correctness against the exact checker.
#include <doctest/doctest.h>

#include <qstar/tasks/game24_data.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>

namespace {
using namespace qstar;
using namespace qstar::game24;
using namespace qstar::game24::data;

TEST_CASE("game24 data: the multiset universe") {
  const auto all = all_multisets();
  CHECK(all.size() == 1820);  // C(13 + 4 - 1, 4)
  const auto ok = solvable_multisets();
  CHECK(ok.size() == 1362);  // the well-known count of solvable hands with 1-13
  for (const auto& m : ok) CHECK(std::is_sorted(m.begin(), m.end()));
  CHECK(multiset_of("10 4 6 5") == Multiset{4, 5, 6, 10});
  CHECK(puzzle_text({4, 5, 6, 10}) == "4 5 6 10");
}

TEST_CASE("game24 data: the train/test separation check") {
  const auto test = load_csv(QSTAR_TEST_DATA, std::pair{901, 1000});
  REQUIRE(test.size() == 100);
  const auto split = make_split(test, 100, 0);
  std::set<Multiset> test_ms;
  for (const auto& p : test) test_ms.insert(multiset_of(p.text));
  CHECK(split.test == test_ms);
  // No training or dev puzzle has the numbers of a test puzzle, in any order.
  for (const auto& m : split.train) CHECK_FALSE(test_ms.contains(m));
  for (const auto& m : split.dev) CHECK_FALSE(test_ms.contains(m));
  CHECK_NOTHROW(check_separation(split.train, test));
  CHECK_NOTHROW(check_separation(split.dev, test));
  // Train and dev are disjoint and together are every other solvable multiset.
  std::set<Multiset> tr(split.train.begin(), split.train.end()), dv(split.dev.begin(), split.dev.end());
  CHECK(split.dev.size() == 100);
  for (const auto& m : dv) CHECK_FALSE(tr.contains(m));
  CHECK(tr.size() + dv.size() + test_ms.size() == solvable_multisets().size());
  // The check fails, naming the puzzle, when a test multiset sneaks in (permuted).
  const Multiset leaked = multiset_of(test[3].text);
  std::vector<Multiset> bad = split.train;
  bad.push_back(leaked);
  CHECK_THROWS_WITH_AS(check_separation(bad, test), doctest::Contains(puzzle_text(leaked).c_str()), Error);
  // Deterministic for the seed; another seed draws another dev set.
  CHECK(make_split(test, 100, 0).dev == split.dev);
  CHECK(make_split(test, 100, 1).dev != split.dev);
  CHECK_THROWS_AS(make_split(test, 5000, 0), InvalidArgument);
}

TEST_CASE("game24 data: the dev split as a CSV that load_csv (and qstar bench) reads back") {
  const auto test = load_csv(QSTAR_TEST_DATA, std::pair{901, 1000});
  const auto split = make_split(test, 100, 0);
  const std::string csv = multisets_csv(split.dev);
  CHECK(csv.starts_with("Rank,Puzzles\n1," + puzzle_text(split.dev[0]) + "\n"));
  const std::string path = "test_game24_dev_split.csv";
  {
    std::ofstream(path, std::ios::binary) << csv;
  }
  const auto back = load_csv(path);
  std::remove(path.c_str());
  REQUIRE(back.size() == split.dev.size());
  for (std::size_t i = 0; i < back.size(); ++i) {
    CHECK(back[i].id == std::to_string(i + 1));
    CHECK(multiset_of(back[i].text) == split.dev[i]);
  }
  // Held out: no test multiset and no training puzzle among them.
  const std::set<Multiset> train(split.train.begin(), split.train.end());
  for (const auto& p : back) {
    CHECK_FALSE(split.test.contains(multiset_of(p.text)));
    CHECK_FALSE(train.contains(multiset_of(p.text)));
  }
}

TEST_CASE("game24 data: traces are in the task's format and labelled honestly") {
  Rng rng(7);
  TraceParams tp;
  tp.dead_end_rate = 0.2;
  tp.arithmetic_error_rate = 0.2;
  std::map<std::string, int> kinds;
  const auto ms = solvable_multisets();
  for (int i = 0; i < 600; ++i) {
    const auto& m = ms[rng.below(ms.size())];
    const std::vector<int> nums{m[0], m[1], m[2], m[3]};
    const Trace t = sample_trace(m, rng, tp);
    ++kinds[t.kind];
    REQUIRE(t.steps.size() == 4);
    CHECK(is_answer_step(t.steps[3]));
    for (int k = 0; k < 3; ++k) CHECK(parse_step(t.steps[k]).has_value());
    CHECK(t.correct == check_answer(nums, answer_expression(t.steps[3])));
    std::string why;
    const auto moves = std::vector<std::string>(t.steps.begin(), t.steps.begin() + 3);
    const auto state = state_after(nums, moves, &why);
    if (t.kind == "correct") {
      // Every step legal, 24 reachable all along, and the answer right.
      REQUIRE(state.has_value());
      CHECK(t.correct);
      CHECK(state->size() == 1);
      CHECK((*state)[0] == Rational(24));
    } else if (t.kind == "dead-end") {
      REQUIRE(state.has_value());  // legal moves only
      CHECK_FALSE(t.correct);
    } else {
      REQUIRE(t.kind == "arithmetic");
      CHECK_FALSE(state.has_value());  // one step's arithmetic is wrong
    }
  }
  CHECK(kinds["correct"] > 300);
  CHECK(kinds["dead-end"] > 60);
  CHECK(kinds["arithmetic"] > 60);
  TraceParams bad;
  bad.dead_end_rate = 1.5;
  CHECK_THROWS_AS(bad.validate(), InvalidArgument);
  Rng r2(1);
  CHECK_THROWS_AS(sample_trace({1, 1, 1, 1}, r2), InvalidArgument);  // unsolvable
}

}  // namespace
