// Synthetic Game of 24 training data: every puzzle (multiset of four numbers 1-13), the
// train / dev / test separation, and step traces in the task's exact text format, both
// solver-correct and deliberately imperfect (dead-end legal moves, wrong arithmetic), so a
// generator trained on them is a realistic, fallible proposer rather than a copy of the
// solver. Header-only, no LibTorch.
//
// Separation rule (issue #4): the test split is ranks 901-1000 of data/game24/24.csv, and no
// puzzle whose multiset of numbers equals a test puzzle's may appear in training or dev data.
// make_split() enforces it and check_separation() re-checks it (tests call both).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "qstar/core/rng.hpp"
#include "qstar/core/types.hpp"
#include "qstar/error.hpp"
#include "qstar/tasks/game24/solver.hpp"
#include "qstar/tasks/game24/steps.hpp"
#include "qstar/tasks/game24/task.hpp"

namespace qstar::game24::data {

/// A puzzle as a sorted multiset of four numbers in 1..13.
using Multiset = std::array<int, 4>;

/// The sorted multiset of a puzzle text ("10 4 5 6" -> {4, 5, 6, 10}); ParseError from
/// parse_puzzle for a malformed puzzle.
inline Multiset multiset_of(std::string_view puzzle) {
  const auto v = parse_puzzle(puzzle);
  Multiset m{v[0], v[1], v[2], v[3]};
  std::sort(m.begin(), m.end());
  return m;
}

/// "4 5 6 10".
inline std::string puzzle_text(const Multiset& m) {
  return fmt::format("{} {} {} {}", m[0], m[1], m[2], m[3]);
}

/// Every multiset of four numbers in 1..13 (1820 of them), in lexicographic order.
inline std::vector<Multiset> all_multisets() {
  std::vector<Multiset> out;
  for (int a = 1; a <= 13; ++a)
    for (int b = a; b <= 13; ++b)
      for (int c = b; c <= 13; ++c)
        for (int d = c; d <= 13; ++d) out.push_back({a, b, c, d});
  return out;
}

/// The multisets that can make 24 (1362 of the 1820), in lexicographic order.
inline std::vector<Multiset> solvable_multisets() {
  std::vector<Multiset> out;
  for (const auto& m : all_multisets())
    if (solvable(to_rationals({m[0], m[1], m[2], m[3]}))) out.push_back(m);
  return out;
}

/// The train / dev split of the solvable multisets, with the test multisets held out.
struct Split {
  std::vector<Multiset> train;  ///< for every training stage
  std::vector<Multiset> dev;    ///< held out: greedy accuracy during training
  std::set<Multiset> test;      ///< the excluded multisets (never in train or dev)
};

/// Splits the solvable multisets: every multiset of `test_problems` (the benchmark's test
/// split, e.g. ranks 901-1000) is excluded, then `dev_size` of the rest are drawn (seeded)
/// as the dev set, and the remainder is the training set (both in lexicographic order).
/// InvalidArgument when dev_size leaves no training puzzle; ParseError for a malformed
/// test puzzle.
inline Split make_split(std::span<const Problem> test_problems, std::size_t dev_size,
                        std::uint64_t seed) {
  Split s;
  for (const auto& p : test_problems) s.test.insert(multiset_of(p.text));
  std::vector<Multiset> pool;
  for (const auto& m : solvable_multisets())
    if (!s.test.contains(m)) pool.push_back(m);
  if (dev_size >= pool.size())
    throw InvalidArgument(fmt::format("dev_size: {} leaves no training puzzle ({} available)",
                                      dev_size, pool.size()));
  Rng rng(derive_seed(seed, std::uint64_t{0x5e1f}));
  for (std::size_t i = 0; i < dev_size; ++i)  // partial Fisher-Yates
    std::swap(pool[i], pool[i + rng.below(pool.size() - i)]);
  s.dev.assign(pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(dev_size));
  s.train.assign(pool.begin() + static_cast<std::ptrdiff_t>(dev_size), pool.end());
  std::sort(s.dev.begin(), s.dev.end());
  std::sort(s.train.begin(), s.train.end());
  return s;
}

/// Multisets as a ToT-style CSV ("Rank,Puzzles", ranks 1..n in the given order), the format
/// load_csv and `qstar bench --data FILE --ranks 1-N` read. The training stages write the dev
/// split this way (DIR/logs/dev.csv), so searches can be compared on held-out puzzles: ranks
/// of data/game24/24.csv outside the test split are training puzzles, where a generator that
/// memorised them looks better than it is (docs/training.md).
inline std::string multisets_csv(std::span<const Multiset> ms) {
  std::string s = "Rank,Puzzles\n";
  for (std::size_t i = 0; i < ms.size(); ++i) s += fmt::format("{},{}\n", i + 1, puzzle_text(ms[i]));
  return s;
}

/// Throws qstar::Error naming the first puzzle of `used` whose multiset is one of
/// `test_problems`' (the separation check every training stage runs on its data).
inline void check_separation(std::span<const Multiset> used, std::span<const Problem> test_problems,
                             std::string_view what = "training data") {
  std::set<Multiset> test;
  for (const auto& p : test_problems) test.insert(multiset_of(p.text));
  for (const auto& m : used)
    if (test.contains(m))
      throw Error(fmt::format("{}: puzzle \"{}\" has the numbers of a test puzzle", what,
                              puzzle_text(m)));
}

/// The problems of a list of multisets (id "<prefix><index>", text "a b c d").
inline std::vector<Problem> to_problems(std::span<const Multiset> ms, std::string_view prefix) {
  std::vector<Problem> out;
  out.reserve(ms.size());
  for (std::size_t i = 0; i < ms.size(); ++i)
    out.push_back({fmt::format("{}{}", prefix, i), puzzle_text(ms[i]), std::nullopt});
  return out;
}

/// How sample_trace mixes correct and imperfect traces.
struct TraceParams {
  /// Chance per trace of one dead-end move: a legal move after which 24 is out of reach
  /// (the trace then goes on legally and ends with a wrong answer). In [0, 1].
  double dead_end_rate = 0.15;
  /// Chance per trace of one arithmetic slip: a move whose result is off by 1 or 2 (the
  /// trace then trusts its own text). In [0, 1].
  double arithmetic_error_rate = 0.10;

  void validate() const {
    if (!(dead_end_rate >= 0.0 && dead_end_rate <= 1.0))
      throw InvalidArgument(fmt::format("TraceParams.dead_end_rate: must be in [0, 1], got {}",
                                        dead_end_rate));
    if (!(arithmetic_error_rate >= 0.0 && arithmetic_error_rate <= 1.0))
      throw InvalidArgument(fmt::format(
          "TraceParams.arithmetic_error_rate: must be in [0, 1], got {}", arithmetic_error_rate));
    if (dead_end_rate + arithmetic_error_rate > 1.0)
      throw InvalidArgument("TraceParams: dead_end_rate + arithmetic_error_rate must be <= 1");
  }
};

/// A synthetic solution: its step texts (the last one an "Answer:" step) and whether its
/// answer is correct (check_answer; a slip in the last move can still end in a correct
/// expression, since the answer is substituted back from the moves' operands).
struct Trace {
  std::vector<std::string> steps;
  bool correct = false;
  /// The flaw it was given: "correct" (none), "dead-end" or "arithmetic".
  std::string kind;
};

/// One trace for a solvable puzzle, in the exact text the Game24Task / LM generator use:
/// three moves `a op b = c (left: ...)` (left lists sorted ascending, as legal_moves writes
/// them) and `Answer: <expr> = 24` with the expression substituted back from the moves.
/// A correct trace picks, at each state, a uniformly random legal move that keeps 24
/// reachable. See TraceParams for the imperfect kinds. Deterministic for the Rng state.
inline Trace sample_trace(const Multiset& puzzle, Rng& rng, const TraceParams& params = {}) {
  const std::vector<int> nums{puzzle[0], puzzle[1], puzzle[2], puzzle[3]};
  auto state = to_rationals(nums);
  if (!solvable(state))
    throw InvalidArgument(fmt::format("sample_trace: puzzle \"{}\" cannot make 24",
                                      puzzle_text(puzzle)));
  const double u = rng.uniform();
  const bool dead = u < params.dead_end_rate;
  const bool slip = !dead && u < params.dead_end_rate + params.arithmetic_error_rate;
  const std::size_t flaw_at = rng.below(3);  // which move is flawed
  Trace t;
  t.kind = "correct";
  bool flawed = false;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto moves = legal_moves(state);
    std::vector<std::size_t> good, bad;
    for (std::size_t k = 0; k < moves.size(); ++k)
      (solvable(moves[k].left) ? good : bad).push_back(k);
    if (flawed || good.empty()) {  // after a flaw anything legal goes
      const auto& m = moves[rng.below(moves.size())];
      t.steps.push_back(m.to_string());
      state = m.left;
      flawed = true;
      continue;
    }
    if (dead && i >= flaw_at && !bad.empty()) {  // the dead end: 24 is out of reach after it
      const auto& m = moves[bad[rng.below(bad.size())]];
      t.steps.push_back(m.to_string());
      state = m.left;
      flawed = true;
      t.kind = "dead-end";
      continue;
    }
    const auto& m = moves[good[rng.below(good.size())]];
    if (slip && i == flaw_at) {
      static constexpr std::array<std::int64_t, 4> kDeltas{-2, -1, 1, 2};
      const Rational c2 = m.c + Rational(kDeltas[rng.below(kDeltas.size())]);
      std::vector<Rational> left = m.left;
      if (auto it = std::find(left.begin(), left.end(), m.c); it != left.end()) *it = c2;
      std::sort(left.begin(), left.end());
      t.steps.push_back(format_step(m.a, m.op, m.b, c2, left));
      state = left;
      flawed = true;
      t.kind = "arithmetic";
      continue;
    }
    t.steps.push_back(m.to_string());
    state = m.left;
  }
  t.steps.push_back(fmt::format("Answer: {} = 24", substitute_steps(nums, t.steps)));
  t.correct = check_answer(nums, answer_expression(t.steps.back()));
  return t;
}

}  // namespace qstar::game24::data
