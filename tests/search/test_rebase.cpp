// REBASE (search/rebase.hpp) and its budget split (allocate_budget, search/weights.hpp):
// largest-remainder rounding against hand-computed widths and its defining bounds
// (computed from an independent softmax); then
// the search on a scripted tree (the widths it used are the split of N), the toy task
// (determinism, batch invariance, one call per iteration, the N - completed budget; the caps:
// test_toy_search.cpp's every-algorithm case)
// and Game of 24 with the exact oracle.
#include <doctest/doctest.h>

#include <cmath>
#include <numeric>

#include <qstar/adapters/callable.hpp>
#include <qstar/core/trace.hpp>
#include <qstar/search/search.hpp>
#include <qstar/tasks/game24.hpp>

#include "../support/toy.hpp"

using namespace qstar;

namespace {

}  // namespace

TEST_CASE("allocate_budget: hand-computed largest-remainder widths") {
  // Scores 0 and ln 3 at T = 1: weights 1/4 and 3/4.
  const std::vector<double> two = {0.0, std::log(3.0)};
  CHECK(allocate_budget(two, 4, 1.0) == std::vector<int>{1, 3});
  CHECK(allocate_budget(two, 5, 1.0) == std::vector<int>{1, 4});  // quotas 1.25, 3.75
  CHECK(allocate_budget(two, 7, 1.0) == std::vector<int>{2, 5});  // 1.75, 5.25
  // Equal scores: remainders tie, the earlier nodes get the extra children.
  CHECK(allocate_budget(std::vector<double>{0.5, 0.5}, 3, 0.1) == std::vector<int>{2, 1});
  CHECK(allocate_budget(std::vector<double>{0.5, 0.5, 0.5}, 2, 1.0) == std::vector<int>{1, 1, 0});
  CHECK(allocate_budget(std::vector<double>{0.5, 0.5, 0.5}, 7, 1.0) == std::vector<int>{3, 2, 2});
  // Scores 0.9 0.5 0.1 0.5 at T = 0.2: weights in proportion to 1, e^-2, e^-4, e^-2, quotas
  // for B = 4 of 3.103, 0.420, 0.057, 0.420: floors 3 0 0 0, and the one child left goes to
  // the larger remainder 0.420 of the earlier node.
  CHECK(allocate_budget(std::vector<double>{0.9, 0.5, 0.1, 0.5}, 4, 0.2) == std::vector<int>{3, 1, 0, 0});
  // A high temperature spreads the budget evenly; a low one gives it all to the best node.
  CHECK(allocate_budget(std::vector<double>{0.9, 0.5, 0.1, 0.5}, 8, 1000.0) == std::vector<int>{2, 2, 2, 2});
  CHECK(allocate_budget(std::vector<double>{0.9, 0.5, 0.1, 0.5}, 8, 0.01) == std::vector<int>{8, 0, 0, 0});
  CHECK(allocate_budget(std::vector<double>{}, 4, 1.0).empty());
  CHECK(allocate_budget(std::vector<double>{0.3, 0.7}, 0, 1.0) == std::vector<int>{0, 0});
  CHECK_THROWS_AS(allocate_budget(two, 4, 0.0), InvalidArgument);
}

TEST_CASE("allocate_budget: sums to B, within one of each quota, never below its floor") {
  Rng rng(5);
  for (int trial = 0; trial < 500; ++trial) {
    const std::size_t n = 1 + rng.below(20);
    const int budget = static_cast<int>(rng.below(100));
    const double temperature = 0.01 + rng.uniform();
    std::vector<double> s(n);
    for (auto& x : s) x = rng.uniform();
    const auto widths = allocate_budget(s, budget, temperature);
    CAPTURE(trial);
    REQUIRE(widths.size() == n);
    CHECK(std::accumulate(widths.begin(), widths.end(), 0) == budget);
    // The quotas from an independent softmax (no max subtraction: scores are in [0, 1]).
    double z = 0.0;
    for (double x : s) z += std::exp(x / temperature);
    std::vector<double> rem(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double quota = budget * std::exp(s[i] / temperature) / z;
      CHECK(std::abs(static_cast<double>(widths[i]) - quota) < 1.0 + 1e-9);  // Hamilton: |W - q| < 1
      rem[i] = quota - std::floor(quota);
    }
    // Hamilton's rule: a node that got its ceiling has a remainder at least as large as
    // every node that got only its floor.
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        const double qi = budget * std::exp(s[i] / temperature) / z, qj = budget * std::exp(s[j] / temperature) / z;
        const bool up_i = widths[i] > std::floor(qi) + 1e-9, floor_j = widths[j] <= std::floor(qj) + 1e-9;
        if (up_i && floor_j) CHECK(rem[i] >= rem[j] - 1e-9);
      }
  }
}

TEST_CASE("REBASE: each depth's widths are the softmax split of N minus the completions") {
  toy::Scripted s;
  s.tree[""] = {{"a", 0.9}, {"b", 0.5}, {"c", 0.1}, {"d", 0.5}};
  s.tree["a"] = {{"ans:1", 0.9, true}};
  s.tree["b"] = {{"ans:2", 0.5, true}};
  s.tree["c"] = {{"ans:3", 0.1, true}};
  s.tree["d"] = {{"ans:4", 0.5, true}};
  toy::ToyTask task;
  const auto ps = toy::problems(1);
  RebaseParams p;
  p.n = 4;
  p.temperature = 0.2;
  p.keep_tree = true;
  const auto rs = rebase_search(std::span<const Problem>(ps), task, s, s, p, 1);
  const Tree& t = *rs[0].tree;
  // Depth 1: a b c d; depth 2: the split {3, 1, 0, 0} computed by hand above.
  std::vector<int> widths;
  for (NodeId c : t.children(Tree::root())) widths.push_back(t[c].num_children);
  CHECK(widths == std::vector<int>{3, 1, 0, 0});
  CHECK(rs[0].candidates.size() == 4);
  CHECK(rs[0].answer == std::optional<std::string>("1"));
  CHECK(rs[0].stop == StopReason::Completed);
  CHECK(rs[0].stats.generated_steps == 8);
}

TEST_CASE("REBASE: completions shrink the next depth's budget") {
  toy::Scripted s;
  // The root proposes mid, ans:5, mid, ans:5, ...: half the first steps finish at once.
  s.tree[""] = {{"mid", 0.6}, {"ans:5", 0.4, true}};
  s.tree["mid"] = {{"ans:1", 0.8, true}};
  toy::ToyTask task;
  const auto ps = toy::problems(1);
  RebaseParams p;
  p.n = 8;
  p.keep_tree = true;
  const auto rs = rebase_search(std::span<const Problem>(ps), task, s, s, p, 2);
  const Tree& t = *rs[0].tree;
  // Depth 1: 8 steps, 4 of them answers; depth 2: B = 8 - 4 = 4 steps over the 4 "mid".
  CHECK(rs[0].stats.generated_steps == 12);
  int depth2 = 0;
  for (NodeId c : t.children(Tree::root())) depth2 += t[c].num_children;
  CHECK(depth2 == 4);
  CHECK(rs[0].candidates.size() == 8);
  CHECK(rs[0].stats.iterations == 2);
  CHECK(rs[0].answer == std::optional<std::string>("1"));  // 4 x 0.8 against 4 x 0.4
}

TEST_CASE("REBASE: deterministic for a seed and batch-invariant") {
  toy::ToyTask task;
  const auto ps = toy::problems(3);
  for (double temperature : {0.05, 1.0}) {
    CAPTURE(temperature);
    RebaseParams p;
    p.n = 8;
    p.temperature = temperature;
    p.keep_tree = true;
    toy::ToyGenerator g1, g64, g1b;
    g1.max_batch = 1;
    g64.max_batch = 64;
    g1.depth = g64.depth = g1b.depth = 4;
    toy::ToyPrm v1, v64;
    v1.max_batch = 1;
    v64.max_batch = 64;
    const auto a = rebase_search(std::span<const Problem>(ps), task, g1, v1, p, 42);
    const auto b = rebase_search(std::span<const Problem>(ps), task, g64, v64, p, 42);
    const auto c = rebase_search(std::span<const Problem>(ps), task, g1b, v64, p, 42);
    const auto d = rebase_search(std::span<const Problem>(ps), task, g64, v64, p, 43);
    CHECK(toy::traces(a) == toy::traces(b));
    CHECK(toy::traces(a) == toy::traces(c));
    CHECK(toy::traces(a) != toy::traces(d));
    const auto alone = rebase_search(std::span<const Problem>(ps).subspan(1, 1), task, g64, v64, p, 42);
    REQUIRE(alone.size() == 1);
    CHECK(toy::traces(alone) == toy::trace_of(a[1]));
    for (const auto& r : a) CHECK(r.candidates.size() == 8);
  }
}

TEST_CASE("REBASE: one generator and one verifier call per depth, N steps per depth") {
  toy::ToyTask task;
  const auto ps = toy::problems(4);
  std::vector<std::size_t> log;
  toy::ToyGenerator g;
  g.batch_log = &log;
  toy::ToyPrm v;
  RebaseParams p;
  p.n = 8;
  const auto rs = rebase_search(std::span<const Problem>(ps), task, g, v, p, 5);
  REQUIRE(log.size() == 3);
  CHECK(log[0] == 4);  // one root request of 8 candidates per problem
  for (const auto& r : rs) {
    CHECK(r.stats.generator_calls == 3);
    CHECK(r.stats.verifier_calls == 3);
    CHECK(r.stats.generated_steps == 24);  // nothing finishes before depth 3
    CHECK(r.candidates.size() == 8);
  }
}

TEST_CASE("REBASE: a mute generator ends the search as exhausted") {
  toy::ToyTask task;
  auto mute = make_generator([](std::span<const ExpandRequest> b) { return std::vector<std::vector<Step>>(b.size()); }, "mute");
  toy::ToyPrm v;
  const auto ps = toy::problems(2);
  for (const auto& r : search(std::span<const Problem>(ps), task, mute, v, default_params("rebase"), 1)) {
    CHECK(r.stop == StopReason::Exhausted);
    CHECK(!r.answer);
    CHECK(r.stats.iterations == 1);
  }
}

TEST_CASE("REBASE with the exact oracle verifier solves Game of 24 puzzles") {
  const auto all = game24::load_csv(QSTAR_TEST_DATA, std::pair{901, 1000});
  const std::vector<Problem> ps(all.begin(), all.begin() + 20);
  game24::Game24Task task;
  game24::OracleStepVerifier prm;
  game24::ProgrammaticGenerator gen;  // error rate 0: legal moves, drawn blindly
  RebaseParams p;
  p.n = 64;
  p.max_depth = 6;
  int solved = 0;
  for (const auto& r : rebase_search(std::span<const Problem>(ps), task, gen, prm, p, 0)) {
    if (!r.correct.value_or(false)) continue;
    CHECK(game24::check_answer(game24::parse_puzzle(r.problem.text), *r.answer));
    ++solved;
  }
  CHECK(solved == 20);  // measured with seed 0, as `qstar bench --ranks 901-920 --algo rebase --n 64 ...`
}

TEST_CASE("REBASE params: validate() names the field") {
  RebaseParams p;
  p.n = 0;
  CHECK_THROWS_WITH_AS(p.validate(), "n must be >= 1", InvalidArgument);
  p = {};
  p.temperature = -1.0;
  CHECK_THROWS_WITH_AS(p.validate(), "temperature must be > 0 and finite", InvalidArgument);
  SearchParams sp = default_params("rebase");
  set_budget(sp, 4);
  CHECK(budget(sp) == 4);
}
