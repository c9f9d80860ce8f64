// Adaptive best-of-N: the stopping rules against exact values and an independent numeric
// integration of the Beta posterior, and the search on the toy task: same samples as
// best-of-N when one round takes them all, early stops that save tokens, determinism, batch
// invariance and budgets.
#include <doctest/doctest.h>

#include <cmath>

#include <qstar/core/trace.hpp>
#include <qstar/search/search.hpp>

#include "../support/toy.hpp"

using namespace qstar;

namespace {

NoVerifier nv;  // the searches take plug-ins by reference

/// P(p > 1/2) for p ~ Beta(a, b), by composite Simpson integration of the density on [1/2, 1]
/// (independent of the binomial-tail identity the library uses).
double beta_upper_half(double a, double b) {
  const int m = 20000;  // even
  const double lognorm = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b);
  auto f = [&](double x) {
    if (x <= 0.0 || x >= 1.0) return (x >= 1.0 && b == 1.0) ? std::exp(lognorm) * std::pow(x, a - 1) : 0.0;
    return std::exp(lognorm + (a - 1) * std::log(x) + (b - 1) * std::log1p(-x));
  };
  const double h = 0.5 / m;
  double s = f(0.5) + f(1.0);
  for (int k = 1; k < m; ++k) s += f(0.5 + k * h) * (k % 2 ? 4.0 : 2.0);
  return s * h / 3.0;
}

}  // namespace

TEST_CASE("beta rule: exact binomial-tail values") {
  // 1 - sum_{k<=v2} C(v1+v2+1, k) / 2^(v1+v2+1), by hand.
  CHECK(beta_stop_probability(4, 0) == doctest::Approx(1.0 - 1.0 / 32).epsilon(1e-12));
  CHECK(beta_stop_probability(3, 0) == doctest::Approx(1.0 - 1.0 / 16).epsilon(1e-12));
  CHECK(beta_stop_probability(1, 0) == doctest::Approx(0.75).epsilon(1e-12));
  CHECK(beta_stop_probability(5, 1) == doctest::Approx(1.0 - 8.0 / 128).epsilon(1e-12));
  CHECK(beta_stop_probability(10, 3) == doctest::Approx(1.0 - 470.0 / 16384).epsilon(1e-12));
  CHECK(beta_stop_probability(6, 4) == doctest::Approx(1.0 - 562.0 / 2048).epsilon(1e-12));
  // A tie: the posterior is symmetric about 1/2.
  for (int v : {0, 1, 7, 100}) CHECK(beta_stop_probability(v, v) == doctest::Approx(0.5).epsilon(1e-9));
  // Large counts stay finite and in [0, 1] (2^-n underflows; the log-space sum does not).
  const double big = beta_stop_probability(3000, 2900);
  CHECK(big > 0.5);
  CHECK(big < 1.0);
}

TEST_CASE("beta rule: agrees with numeric integration of the Beta(v1+1, v2+1) posterior") {
  for (auto [v1, v2] : std::vector<std::pair<int, int>>{{2, 0}, {4, 1}, {9, 2}, {12, 9}, {30, 20}, {300, 250}}) {
    CAPTURE(v1);
    CAPTURE(v2);
    CHECK(beta_stop_probability(v1, v2) == doctest::Approx(beta_upper_half(v1 + 1, v2 + 1)).epsilon(1e-7));
  }
}

TEST_CASE("answers_agree: share and beta rules, min_answers") {
  AdaptiveBestOfNParams p;
  p.rule = AgreementRule::Share;
  p.threshold = 0.75;
  CHECK(answers_agree({1, 3}, p));       // 3/4 >= 0.75
  CHECK(!answers_agree({1, 1, 2}, p));   // 2/4
  p.threshold = 0.8;
  CHECK(!answers_agree({1, 3}, p));
  CHECK(answers_agree({5}, p));
  p.min_answers = 6;
  CHECK(!answers_agree({5}, p));
  CHECK(!answers_agree({}, p));
  p = AdaptiveBestOfNParams{};  // beta, 0.95, min 2
  CHECK(answers_agree({4}, p));          // 0.96875
  CHECK(!answers_agree({3}, p));         // 0.9375
  CHECK(!answers_agree({5, 1}, p));      // 0.9375
  CHECK(answers_agree({1, 6}, p));       // 1 - 9/256 = 0.96484375
  CHECK(!answers_agree({1}, p));         // fewer than min_answers
  p.threshold = 0.75;
  p.min_answers = 1;
  CHECK(answers_agree({1}, p));          // 0.75
}

TEST_CASE("params validate() names the field") {
  auto bad = [](auto f, const char* field) {
    AdaptiveBestOfNParams p;
    f(p);
    try {
      p.validate();
      FAIL("expected InvalidArgument");
    } catch (const InvalidArgument& e) {
      CHECK(std::string(e.what()).find(field) != std::string::npos);
    }
  };
  bad([](auto& p) { p.round_size = 0; }, "round_size");
  bad([](auto& p) { p.n = 0; }, "n must");
  bad([](auto& p) { p.min_answers = 0; }, "min_answers");
  bad([](auto& p) { p.threshold = 0.5; }, "threshold");
  bad([](auto& p) { p.rule = AgreementRule::Share; p.threshold = 1.5; }, "threshold");
  CHECK(canonical_algorithm("asc") == "adaptive-best-of-n");
}

TEST_CASE("one round of n samples is best-of-N: the same tree and answer") {
  toy::ToyTask task;
  const auto ps = toy::problems(3);
  for (Voting v : {Voting::Majority, Voting::Weighted}) {
    BestOfNParams b;
    b.n = 8;
    b.voting = v;
    b.keep_tree = true;
    AdaptiveBestOfNParams a;
    a.n = 8;
    a.round_size = 8;
    a.voting = v;
    a.keep_tree = true;
    toy::ToyGenerator g;
    toy::ToyPrm prm;
    const auto rb = best_of_n(std::span<const Problem>(ps), task, g, prm, b, 5);
    const auto ra = adaptive_best_of_n(std::span<const Problem>(ps), task, g, prm, a, 5);
    for (std::size_t i = 0; i < ps.size(); ++i) {
      CHECK(toy::trace_of(ra[i], false) == toy::trace_of(rb[i], false));
      CHECK(ra[i].answer == rb[i].answer);
      CHECK(ra[i].stats.generated_tokens == rb[i].stats.generated_tokens);
      CHECK(ra[i].stats.samples == 8);
    }
  }
}

TEST_CASE("answers that agree early stop the problem: fewer samples and tokens than best-of-N") {
  toy::ToyTask task;
  const auto ps = toy::problems(4);
  toy::ToyGenerator agree;  // every sample answers "0"
  agree.answers = 1;
  BestOfNParams b;
  b.n = 32;
  AdaptiveBestOfNParams a;
  a.n = 32;
  a.round_size = 4;
  std::vector<std::size_t> log;
  agree.batch_log = &log;
  const auto ra = adaptive_best_of_n(std::span<const Problem>(ps), task, agree, nv, a, 1);
  // Depth 3, 4 problems x 4 chains, one call per step; 4 agreeing answers: P = 0.96875 >= 0.95.
  CHECK(log == std::vector<std::size_t>{16, 16, 16});
  agree.batch_log = nullptr;
  const auto rb = best_of_n(std::span<const Problem>(ps), task, agree, nv, b, 1);
  for (std::size_t i = 0; i < ps.size(); ++i) {
    CHECK(ra[i].stop == StopReason::Solved);
    CHECK(ra[i].stats.samples == 4);
    CHECK(ra[i].stats.generated_steps == 12);
    CHECK(ra[i].answer == std::optional<std::string>("0"));
    CHECK(ra[i].answer == rb[i].answer);
    CHECK(ra[i].stats.generated_tokens < rb[i].stats.generated_tokens);
  }
  // Answers spread over 4 values never reach a 0.99 share: all 32 samples are taken.
  toy::ToyGenerator spread;
  a.rule = AgreementRule::Share;
  a.threshold = 0.99;
  a.min_answers = 8;  // a check needs 8 answers, all equal: (1/4)^7 per check
  const auto rs = adaptive_best_of_n(std::span<const Problem>(ps), task, spread, nv, a, 1);
  for (const auto& r : rs) {
    CHECK(r.stop == StopReason::Completed);
    CHECK(r.stats.samples == 32);
    CHECK(r.candidates.size() == 32);
  }
}

TEST_CASE("problems advance their rounds independently in one call per iteration") {
  toy::ToyTask task;
  const auto ps = toy::problems(2);
  // Whether a round's answers reach a 0.6 share is up to chance here: whatever each problem
  // does, every call carries the open chains of both, and a problem opens its next round in
  // the iteration after its last one ended (so it takes part in one call per step).
  AdaptiveBestOfNParams a;
  a.n = 12;
  a.round_size = 3;
  a.rule = AgreementRule::Share;
  a.threshold = 0.6;
  a.min_answers = 3;
  toy::ToyGenerator g;
  std::vector<std::size_t> log;
  g.batch_log = &log;
  const auto rs = adaptive_best_of_n(std::span<const Problem>(ps), task, g, nv, a, 3);
  std::size_t sent = 0;
  for (auto s : log) sent += s;
  std::int64_t steps = 0;
  for (const auto& r : rs) {
    steps += r.stats.generated_steps;
    CHECK(r.stats.generated_steps == 3 * r.stats.samples);  // depth 3, every chain ends
    CHECK(r.stats.samples % 3 == 0);
    CHECK(r.stats.generator_calls == r.stats.samples);
  }
  CHECK(static_cast<std::int64_t>(sent) == steps);
}

TEST_CASE("adaptive best-of-N is deterministic for a seed and batch-invariant") {
  toy::ToyTask task;
  const auto ps = toy::problems(5);
  AdaptiveBestOfNParams a;
  a.n = 16;
  a.round_size = 2;
  a.rule = AgreementRule::Share;
  a.threshold = 0.6;
  a.keep_tree = true;
  toy::ToyGenerator g1, g64;
  g1.max_batch = 1;
  g64.max_batch = 64;
  toy::ToyPrm v1, v64;
  v1.max_batch = 1;
  const auto x = adaptive_best_of_n(std::span<const Problem>(ps), task, g1, v1, a, 42);
  const auto y = adaptive_best_of_n(std::span<const Problem>(ps), task, g64, v64, a, 42);
  const auto z = adaptive_best_of_n(std::span<const Problem>(ps), task, g64, v64, a, 43);
  std::string tx, ty, tz;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    tx += toy::trace_of(x[i], false);
    ty += toy::trace_of(y[i], false);
    tz += toy::trace_of(z[i], false);
    CHECK(x[i].stats.samples == y[i].stats.samples);
  }
  CHECK(tx == ty);
  CHECK(tx != tz);
  const auto alone = adaptive_best_of_n(std::span<const Problem>(ps).subspan(2, 1), task, g64, v64, a, 42);
  CHECK(toy::trace_of(alone[0], false) == toy::trace_of(x[2], false));
  CHECK(alone[0].stats.samples == x[2].stats.samples);
  CHECK(alone[0].answer == x[2].answer);
}

TEST_CASE("adaptive best-of-N: budgets are never exceeded and name the cap") {
  toy::ToyTask task;
  const auto ps = toy::problems(2);
  Budget tok, ver, calls, nodes;
  tok.max_generated_tokens = 20;
  ver.max_verifier_tokens = 15;
  calls.max_generator_calls = 2;
  nodes.max_nodes = 6;
  const std::vector<std::pair<Budget, StopReason>> cases = {{tok, StopReason::GeneratedTokens},
                                                            {ver, StopReason::VerifierTokens},
                                                            {calls, StopReason::GeneratorCalls},
                                                            {nodes, StopReason::Nodes}};
  for (const auto& [b, reason] : cases) {
    CAPTURE(to_string(reason));
    AdaptiveBestOfNParams a;
    a.n = 8;
    a.round_size = 2;
    a.rule = AgreementRule::Share;
    a.threshold = 1.0;
    a.budget = b;
    a.keep_tree = true;
    toy::ToyGenerator g;
    toy::ToyPrm v;
    const auto rs = adaptive_best_of_n(std::span<const Problem>(ps), task, g, v, a, 9);
    for (const auto& r : rs) {
      if (b.max_generated_tokens) CHECK(r.stats.generated_tokens <= b.max_generated_tokens);
      if (b.max_verifier_tokens) CHECK(r.stats.verifier_tokens <= b.max_verifier_tokens);
      if (b.max_generator_calls) CHECK(r.stats.generator_calls <= b.max_generator_calls);
      if (b.max_nodes) CHECK(r.stats.nodes <= b.max_nodes);
      CHECK(static_cast<std::int64_t>(r.tree->size()) == r.stats.nodes);
      CHECK(r.stop == reason);
    }
  }
}
