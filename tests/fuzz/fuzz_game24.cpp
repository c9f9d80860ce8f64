// libFuzzer target: the Game of 24 text parsers (include/qstar/tasks/game24.hpp).
//
// Input: lines. Every line goes through Rational::parse, parse_puzzle, parse_step,
// eval_expression, canonical_expression and answer_expression; the first line is also the
// puzzle (when it parses) for check_answer, state_after, substitute_steps, the oracle PRM
// and the programmatic generator, with the other lines as the trajectory.
//
// Oracles (beyond "no crash, no sanitizer report, only qstar::Error escapes"):
//  * Rational::parse(r.to_string()) == r; ParsedStep::to_string() parses back to the step;
//  * canonical_expression keeps the value of an expression that evaluates, is itself an
//    expression, and is idempotent;
//  * every move legal_moves() lists passes check_step();
//  * a parsed puzzle has 4 numbers in 1..13, and solve()'s answer passes check_answer();
//  * the oracle PRM returns one score in {0, 1} per new step;
//  * from a legal prefix, the error-free programmatic generator proposes only legal moves.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/error.hpp"
#include "qstar/tasks/game24.hpp"

namespace g24 = qstar::game24;
using qstar_fuzz::shown;

namespace {

void one_line(const std::string& s) {
  std::string why;
  if (auto r = g24::Rational::parse(s, &why)) {
    const auto back = g24::Rational::parse(r->to_string());
    FUZZ_CHECK(back && *back == *r, "Rational '%s' -> '%s'", shown(s).c_str(), r->to_string().c_str());
  } else {
    FUZZ_CHECK(!why.empty(), "Rational::parse failed without a reason");
  }

  try {
    const auto p = g24::parse_puzzle(s);
    FUZZ_CHECK(p.size() == 4, "puzzle of %zu numbers", p.size());
    for (int v : p) FUZZ_CHECK(v >= 1 && v <= 13, "puzzle number %d", v);
  } catch (const qstar::ParseError&) {
  }

  why.clear();
  if (auto step = g24::parse_step(s, &why)) {
    const std::string text = step->to_string();
    const auto back = g24::parse_step(text);
    FUZZ_CHECK(back && *back == *step, "step '%s' -> '%s' does not parse back", shown(s).c_str(),
               shown(text).c_str());
    FUZZ_CHECK(!g24::is_answer_step(s), "an answer step parsed as a move");
    // Check it against a few states, and enumerate the moves of a small state.
    std::vector<g24::Rational> state = step->left;
    (void)g24::check_step(state, *step);
    state.push_back(step->a);
    state.push_back(step->b);
    (void)g24::check_step(state, *step);
    if (step->left.size() <= 5) {
      for (const auto& m : g24::legal_moves(step->left)) {
        const std::string err = g24::check_step(step->left, m);
        FUZZ_CHECK(err.empty(), "legal move '%s' rejected: %s", m.to_string().c_str(), err.c_str());
      }
    }
    if (step->left.size() <= 4) (void)g24::solvable(step->left);
  } else {
    FUZZ_CHECK(!why.empty(), "parse_step failed without a reason");
  }

  why.clear();
  std::vector<g24::Rational> leaves;
  const auto v = g24::eval_expression(s, &leaves, &why);
  if (!v) FUZZ_CHECK(!why.empty(), "eval_expression failed without a reason");
  const std::string canon = g24::canonical_expression(s);
  const std::string_view expr = g24::answer_expression(s);
  std::vector<g24::Rational> expr_leaves;
  if (const auto e = g24::eval_expression(expr, &expr_leaves, nullptr)) {
    // The voting key is an expression over the same numbers with the same value, and a
    // fixed point.
    // (Reordering may overflow an int64 intermediate that the original order did not.)
    std::vector<g24::Rational> canon_leaves;
    std::string cwhy;
    const auto cv = g24::eval_expression(canon, &canon_leaves, &cwhy);
    FUZZ_CHECK((cv && *cv == *e) || (!cv && cwhy == "arithmetic overflow"), "canonical '%s' of '%s' changes the value %s", shown(canon).c_str(),
               shown(s).c_str(), e->to_string().c_str());
    std::sort(expr_leaves.begin(), expr_leaves.end());
    std::sort(canon_leaves.begin(), canon_leaves.end());
    FUZZ_CHECK(expr_leaves == canon_leaves, "canonical '%s' of '%s' changes the numbers", shown(canon).c_str(),
               shown(s).c_str());
    FUZZ_CHECK(g24::canonical_expression(canon) == canon, "canonical '%s' of '%s' is not a fixed point",
               shown(canon).c_str(), shown(s).c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return -1;  // reject: keeps every input fast
  const auto lines = qstar_fuzz::split(qstar_fuzz::as_view(data, size), '\n');
  if (lines.size() > 12) return -1;
  for (const auto& l : lines) one_line(l);

  std::vector<int> puzzle;
  try {
    puzzle = g24::parse_puzzle(lines[0]);
  } catch (const qstar::ParseError&) {
    return 0;
  }
  const std::vector<std::string> steps(lines.begin() + 1, lines.end());
  if (auto sol = g24::solve(puzzle)) {
    FUZZ_CHECK(g24::check_answer(puzzle, *sol), "solve() gave '%s', which check_answer rejects", sol->c_str());
    FUZZ_CHECK(g24::check_answer(puzzle, "Answer: " + *sol + " = 24"), "'Answer: %s = 24' rejected", sol->c_str());
  }
  for (const auto& s : steps) (void)g24::check_answer(puzzle, s);
  std::string why;
  const auto state = g24::state_after(puzzle, steps, &why);
  (void)g24::substitute_steps(puzzle, steps);

  // The trajectory as a tree chain; the oracle PRM and the generator on it.
  qstar::Tree tree;
  qstar::NodeId leaf = qstar::Tree::root();
  for (const auto& s : steps) {
    qstar::Step st;
    st.text = s;
    st.num_tokens = static_cast<std::int32_t>(s.size());
    st.finish = g24::is_answer_step(s) ? qstar::FinishReason::FinalAnswer : qstar::FinishReason::StepEnd;
    leaf = tree.add_child(leaf, st);
  }
  const qstar::Problem problem{"fuzz", lines[0], std::nullopt};
  const qstar::TrajectoryView traj = tree.trajectory(leaf);
  const g24::Game24Task task;
  if (auto ans = task.extract_answer(traj)) (void)task.check(problem, *ans);

  qstar::StepScoreRequest sreq;
  sreq.problem = &problem;
  sreq.trajectory = traj;
  sreq.first_new = 0;
  const auto scores = g24::OracleStepVerifier{}.score(sreq);
  FUZZ_CHECK(scores.size() == steps.size(), "%zu scores for %zu steps", scores.size(), steps.size());
  for (double x : scores) FUZZ_CHECK(x == 0.0 || x == 1.0, "oracle score %g", x);

  for (const double err : {0.0, 0.5}) {
    g24::ProgrammaticGenerator gen({.error_rate = err});
    qstar::ExpandRequest req;
    req.problem = &problem;
    req.prefix = traj;
    req.num_candidates = 4;
    req.seed = size;
    const auto props = gen.propose(req);
    for (const auto& p : props) {
      FUZZ_CHECK(p.num_tokens == static_cast<std::int32_t>(p.text.size()), "num_tokens");
      if (err == 0.0 && state && !p.text.empty() && !g24::is_answer_step(p.text)) {
        const auto mv = g24::parse_step(p.text);
        FUZZ_CHECK(mv.has_value(), "proposal '%s' does not parse", p.text.c_str());
        const std::string bad = g24::check_step(*state, *mv);
        FUZZ_CHECK(bad.empty(), "error-free proposal '%s' is illegal: %s", p.text.c_str(), bad.c_str());
      }
    }
  }
  return 0;
}
