// Game of 24: the programmatic generator, a (possibly weak) proposer of ToT steps.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <limits>
#include <numeric>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "qstar/core/concepts.hpp"
#include "qstar/core/rng.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/core/types.hpp"
#include "qstar/error.hpp"
#include "qstar/tasks/game24/task.hpp"

namespace qstar::game24 {

// ---- the programmatic generator -----------------------------------------------------------

/// Parameters of ProgrammaticGenerator.
struct GeneratorParams {
  /// Probability in [0, 1] that each proposed step is corrupted the way a weak model errs: a
  /// move gets a wrong result, a number that is not left, or a wrong left list; an answer gets
  /// a changed operator. 0 is a perfect proposer.
  double error_rate = 0.0;
  /// true: the candidates of one request are distinct moves drawn without replacement (so at
  /// most as many as there are legal moves); false: drawn with replacement (repeats happen).
  bool propose_distinct = true;
  /// The largest batch expand() accepts; the core splits larger calls (0 = unlimited).
  std::size_t max_batch_size = 0;

  void validate() const {
    if (!(error_rate >= 0.0 && error_rate <= 1.0))
      throw InvalidArgument(fmt::format("error_rate: must be in [0, 1], got {}", error_rate));
  }
};

/// A Generator that proposes ToT steps by enumerating moves, like ToT's propose prompt with
/// an LLM that knows arithmetic (and, with error_rate > 0, sometimes errs). The model trusts
/// its own text: the numbers it works from are the left list of the prefix's last step (the
/// puzzle's numbers if the prefix is empty or its last step does not parse). From two or more
/// numbers it samples legal moves uniformly (Rng seeded from the request's seed, or the first
/// moves in canonical order when greedy); from one number it writes "Answer: <expr> = 24"
/// with <expr> substituted back from the prefix's steps. A prefix ending in an answer gets no
/// proposal, and neither does one whose last step leaves more numbers than the puzzle has (each
/// of this generator's steps, right or wrong, leaves one number fewer; without this rule
/// a crafted step with hundreds of numbers made propose() take seconds and gigabytes, found
/// by fuzz_game24). Steps are ASCII and a token is a character: num_tokens == text.size().
class ProgrammaticGenerator {
 public:
  explicit ProgrammaticGenerator(GeneratorParams params = {}) : params_(params) {
    params_.validate();
  }

  const GeneratorParams& params() const noexcept { return params_; }
  std::string name() const { return "game24-programmatic"; }
  std::size_t max_batch_size() const noexcept { return params_.max_batch_size; }

  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> batch) const {
    std::vector<std::vector<Step>> out;
    out.reserve(batch.size());
    for (const auto& request : batch) out.push_back(propose(request));
    return out;
  }

  /// The proposals for one request (what expand() returns for it).
  std::vector<Step> propose(const ExpandRequest& request) const {
    if (request.problem == nullptr) throw InvalidArgument("ExpandRequest.problem: null");
    if (request.num_candidates < 1)
      throw InvalidArgument(fmt::format("ExpandRequest.num_candidates: must be >= 1, got {}",
                                        request.num_candidates));
    const auto puzzle = parse_puzzle(request.problem->text);
    const TrajectoryView& prefix = request.prefix;
    std::vector<std::string_view> texts;
    texts.reserve(prefix.size());
    for (std::size_t i = 0; i < prefix.size(); ++i) texts.push_back(prefix.text(i));
    if (!texts.empty() && is_answer_step(texts.back())) return {};

    std::vector<Rational> state;
    if (!texts.empty()) {
      if (auto last = parse_step(texts.back())) state = std::move(last->left);
    }
    if (state.empty()) state = to_rationals(puzzle);
    if (state.size() > puzzle.size()) return {};  // unreachable (see the class comment)

    Rng rng(request.seed);
    const double e = params_.error_rate;
    std::vector<Step> steps;
    if (state.size() >= 2) {
      const auto moves = legal_moves(state);
      if (moves.empty()) return {};
      const auto picks = pick(moves.size(), request, rng);
      const double base = -std::log(static_cast<double>(moves.size()));
      for (const std::size_t k : picks) {
        std::string text;
        double logprob = base;
        if (e > 0.0 && rng.uniform() < e) {
          logprob += std::log(e);
          text = corrupt_move(moves[k], state, rng, logprob);
        } else {
          logprob += std::log1p(-e);
          text = moves[k].to_string();
        }
        steps.push_back(make_step(std::move(text), logprob, FinishReason::StepEnd, request));
      }
    } else {
      const std::string expr = substitute_steps(puzzle, texts);
      for (std::size_t n = pick(1, request, rng).size(); n > 0; --n) {
        std::string text = expr;
        double logprob = 0.0;
        if (e > 0.0 && rng.uniform() < e) {
          logprob += std::log(e);
          text = corrupt_expression(expr, rng, logprob);
        } else {
          logprob += std::log1p(-e);
        }
        steps.push_back(make_step(fmt::format("Answer: {} = 24", text), logprob,
                                  FinishReason::FinalAnswer, request));
      }
    }
    return steps;
  }

 private:
  static constexpr std::array<std::int64_t, 4> kDeltas{-2, -1, 1, 2};

  /// Indices of the chosen moves among m (see the class comment).
  std::vector<std::size_t> pick(std::size_t m, const ExpandRequest& request, Rng& rng) const {
    const auto n = static_cast<std::size_t>(request.num_candidates);
    std::vector<std::size_t> idx;
    if (request.greedy || params_.propose_distinct) {
      idx.resize(m);
      std::iota(idx.begin(), idx.end(), std::size_t{0});
      const std::size_t k = std::min(n, m);
      if (!request.greedy) {
        for (std::size_t t = 0; t < k; ++t) std::swap(idx[t], idx[t + rng.below(m - t)]);
      }
      idx.resize(k);
    } else {
      idx.reserve(n);
      for (std::size_t t = 0; t < n; ++t) idx.push_back(rng.below(m));
    }
    return idx;
  }

  /// A ruined version of a legal move; adds the log-probability of the choice to logprob.
  static std::string corrupt_move(const ParsedStep& move, const std::vector<Rational>& state,
                                  Rng& rng, double& logprob) {
    // r + d, or -r in the (absurd) case that overflows; either way a different number.
    auto nudge = [&rng](const Rational& r) {
      return apply('+', r, Rational(kDeltas[rng.below(kDeltas.size())])).value_or(-r);
    };
    // The move's left list with its result c replaced by c2, sorted.
    auto left_with = [&](const Rational& c2) {
      std::vector<Rational> left = move.left;
      if (auto it = std::find(left.begin(), left.end(), move.c); it != left.end()) *it = c2;
      std::sort(left.begin(), left.end());
      return left;
    };
    logprob -= std::log(3.0);
    const auto kind = rng.below(3);
    if (kind == 1) {  // a number that is not in the state
      std::vector<Rational> absent;
      for (std::int64_t v = 1; v <= 13; ++v)
        if (std::find(state.begin(), state.end(), Rational(v)) == state.end()) absent.push_back(v);
      const bool second = rng.below(2) == 1;
      if (!absent.empty()) {
        const Rational bad = absent[rng.below(absent.size())];
        const Rational& x = second ? move.a : bad;
        const Rational& y = second ? bad : move.b;
        if (const auto c2 = apply(move.op, x, y)) {
          logprob -= std::log(2.0) + std::log(static_cast<double>(absent.size()));
          return format_step(x, move.op, y, *c2, left_with(*c2));
        }
      }
    }
    if (kind == 2) {  // a wrong left list
      std::vector<Rational> left = move.left;
      const auto k = rng.below(left.size());
      left[k] = nudge(left[k]);
      std::sort(left.begin(), left.end());
      logprob -= std::log(static_cast<double>(move.left.size() * kDeltas.size()));
      return format_step(move.a, move.op, move.b, move.c, left);
    }
    // a wrong result, off by a small nonzero integer (also the fallback of kind 1)
    const Rational c2 = nudge(move.c);
    logprob -= std::log(static_cast<double>(kDeltas.size()));
    return format_step(move.a, move.op, move.b, c2, left_with(c2));
  }

  /// The expression with one operator changed so that it no longer makes 24 (or, if no
  /// change does that, its first number increased by one); adds the choice's log-probability.
  static std::string corrupt_expression(const std::string& expr, Rng& rng, double& logprob) {
    std::vector<std::string> options;
    for (std::size_t p = 0; p < expr.size(); ++p) {
      if (std::string_view("+-*/").find(expr[p]) == std::string_view::npos) continue;
      for (const char op : {'+', '-', '*', '/'}) {
        if (op == expr[p]) continue;
        std::string candidate = expr;
        candidate[p] = op;
        const auto v = eval_expression(candidate);
        if (!v || *v != 24) options.push_back(std::move(candidate));
      }
    }
    if (!options.empty()) {
      logprob -= std::log(static_cast<double>(options.size()));
      return options[rng.below(options.size())];
    }
    const auto start = std::find_if(expr.begin(), expr.end(), detail::is_digit);
    const auto end = std::find_if_not(start, expr.end(), detail::is_digit);
    if (start == end) return expr + " + 1";
    const auto v =
        detail::parse_uint(std::string_view(&*start, static_cast<std::size_t>(end - start)));
    return std::string(expr.begin(), start) + std::to_string(v.value_or(0) + 1) +
           std::string(end, expr.end());
  }

  static Step make_step(std::string text, double logprob, FinishReason finish,
                        const ExpandRequest& request) {
    if (request.max_new_tokens > 0 &&
        text.size() > static_cast<std::size_t>(request.max_new_tokens)) {
      text.resize(static_cast<std::size_t>(request.max_new_tokens));
      finish = FinishReason::Length;
    }
    Step s;
    s.num_tokens = static_cast<std::int32_t>(text.size());
    s.text = std::move(text);
    s.logprob = logprob;
    s.finish = finish;
    return s;
  }

  GeneratorParams params_;
};

static_assert(Generator<ProgrammaticGenerator>);

}  // namespace qstar::game24
