// Reliability of the searches (issue #7): params validation rejects nonsense, plug-ins that
// break their contract are reported by name under every algorithm, and a long MCTS under a
// node cap stops gracefully with bounded memory.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include <qstar/adapters/callable.hpp>
#include <qstar/core/any.hpp>
#include <qstar/search/search.hpp>
#include <qstar/tasks/game24.hpp>

#include "../support/toy.hpp"

using namespace qstar;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// The validate() message, or "" when it accepts.
template <class P>
std::string rejection(const P& p) {
  try {
    p.validate();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

// Every search in this file runs with these two plug-in types (AnyGenerator and FnVerifier),
// so each algorithm is instantiated once: a lambda type per case would instantiate all five
// searches again for each (minutes of compile time under the sanitizers).

/// A step and outcome verifier from two functions (default: the toy PRM's scores).
struct FnVerifier {
  std::function<std::vector<std::vector<double>>(std::span<const StepScoreRequest>)> steps =
      [](std::span<const StepScoreRequest> b) { return toy::ToyPrm{}.score_steps(b); };
  std::function<std::vector<double>(std::span<const OutcomeRequest>)> outcomes =
      [](std::span<const OutcomeRequest> b) { return toy::ToyPrm{}.score_outcomes(b); };
  std::string label = "toy-prm";
  std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest> b) { return steps(b); }
  std::vector<double> score_outcomes(std::span<const OutcomeRequest> b) { return outcomes(b); }
  std::string name() const { return label; }
};

/// A generator from a batch function.
AnyGenerator gen_of(std::function<std::vector<std::vector<Step>>(std::span<const ExpandRequest>)> fn,
                    std::string name) {
  return AnyGenerator(make_generator(std::move(fn), std::move(name)));
}

AnyGenerator toy_gen(int depth = 3) {
  toy::ToyGenerator g;
  g.depth = depth;
  return AnyGenerator(g);
}

std::vector<SearchResult> run(std::span<const Problem> ps, AnyGenerator& gen, FnVerifier& ver,
                              const SearchParams& p, std::uint64_t seed) {
  const toy::ToyTask task;
  return search(ps, task, gen, ver, p, seed);
}

/// A generator that must never be called (params are validated before any plug-in call).
AnyGenerator never_called() {
  return gen_of(
      [](std::span<const ExpandRequest>) -> std::vector<std::vector<Step>> {
        throw std::logic_error("the generator was called although the params are invalid");
      },
      "never");
}

/// Resident set size of this process in bytes (Linux), 0 when unknown.
std::size_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  if (!(f >> pages >> resident)) return 0;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif
#else
constexpr bool kAsan = false;
#endif

}  // namespace

// ---- params validation ------------------------------------------------------------------

TEST_CASE("validate() rejects a zero or negative budget knob N for every algorithm") {
  for (int n : {0, -1, std::numeric_limits<int>::min()}) {
    CAPTURE(n);
    BestOfNParams bon;
    bon.n = n;
    CHECK(rejection(bon).rfind("n must be >= 1", 0) == 0);
    BeamParams beam;
    beam.num_beams = n;
    CHECK(rejection(beam).rfind("num_beams must be >= 1", 0) == 0);
    DvtsParams dv;
    dv.n = n;
    CHECK(rejection(dv).rfind("n must be >= 1", 0) == 0);
    BestFirstParams bf;
    bf.max_expansions = n;
    CHECK(rejection(bf).rfind("max_expansions must be >= 1", 0) == 0);
    MctsParams mc;
    mc.num_simulations = n;
    CHECK(rejection(mc).rfind("num_simulations must be >= 1", 0) == 0);
  }
}

TEST_CASE("validate() rejects a width above N, a zero width, and N not a multiple of it") {
  BeamParams beam;
  beam.num_beams = 4;
  beam.width = 8;
  CHECK(rejection(beam).rfind("width must be <= num_beams", 0) == 0);
  beam.width = 0;
  CHECK(rejection(beam).rfind("width must be >= 1", 0) == 0);
  beam.width = -4;
  CHECK(rejection(beam).rfind("width must be >= 1", 0) == 0);
  beam.width = 3;
  CHECK(rejection(beam).rfind("num_beams must be a multiple of width", 0) == 0);
  beam.width = 2;
  beam.lookahead = -1;
  CHECK(rejection(beam).rfind("lookahead must be >= 0", 0) == 0);

  DvtsParams dv;
  dv.n = 4;
  dv.width = 8;
  CHECK(rejection(dv).rfind("width must be <= n", 0) == 0);
  dv.width = 0;
  CHECK(rejection(dv).rfind("width must be >= 1", 0) == 0);
  dv.width = 3;
  CHECK(rejection(dv).rfind("n must be a multiple of width", 0) == 0);
}

TEST_CASE("validate() rejects negative budgets, NaN wall time and common nonsense for every algorithm") {
  const std::vector<SearchParams> all = {BestOfNParams{}, BeamParams{}, DvtsParams{}, BestFirstParams{},
                                         MctsParams{}};
  struct Case {
    const char* field;
    std::function<void(CommonParams&)> set;
  };
  const std::vector<Case> cases = {
      {"budget.max_generated_tokens", [](CommonParams& c) { c.budget.max_generated_tokens = -1; }},
      {"budget.max_verifier_tokens", [](CommonParams& c) { c.budget.max_verifier_tokens = -1; }},
      {"budget.max_generator_calls", [](CommonParams& c) { c.budget.max_generator_calls = -1; }},
      {"budget.max_nodes", [](CommonParams& c) { c.budget.max_nodes = -1; }},
      {"budget.max_nodes", [](CommonParams& c) { c.budget.max_nodes = 1; }},
      {"budget.max_wall_seconds", [](CommonParams& c) { c.budget.max_wall_seconds = -0.001; }},
      {"budget.max_wall_seconds", [](CommonParams& c) { c.budget.max_wall_seconds = kNaN; }},
      {"budget.max_wall_seconds", [](CommonParams& c) { c.budget.max_wall_seconds = -kInf; }},
      {"max_depth", [](CommonParams& c) { c.max_depth = 0; }},
      {"max_step_tokens", [](CommonParams& c) { c.max_step_tokens = -1; }},
      {"top_k", [](CommonParams& c) { c.top_k = -1; }},
      {"custom_aggregation", [](CommonParams& c) { c.aggregation = Aggregation::Custom; }},
  };
  FnVerifier prm;
  const auto ps = toy::problems(1);
  for (const auto& base : all) {
    const std::string algo = algorithm_name(base);
    CAPTURE(algo);
    for (const auto& c : cases) {
      const std::string field = c.field;
      CAPTURE(field);
      SearchParams p = base;
      c.set(common(p));
      const std::string msg = std::visit([](const auto& x) { return rejection(x); }, p);
      CHECK(msg.rfind(field, 0) == 0);
      // The search entry point validates before calling any plug-in.
      auto gen = never_called();
      CHECK_THROWS_AS(run(ps, gen, prm, p, 1), InvalidArgument);
    }
  }
}

TEST_CASE("validate() rejects negative, NaN and infinite exploration constants, temperatures and mixes") {
  struct Case {
    const char* field;
    std::function<void(MctsParams&)> set;
  };
  const std::vector<Case> mcts = {
      {"c_puct_init", [](MctsParams& p) { p.c_puct_init = -0.5; }},
      {"c_puct_init", [](MctsParams& p) { p.c_puct_init = kNaN; }},
      {"c_puct_init", [](MctsParams& p) { p.c_puct_init = kInf; }},
      {"c_puct_base", [](MctsParams& p) { p.c_puct_base = 0; }},
      {"c_puct_base", [](MctsParams& p) { p.c_puct_base = kNaN; }},
      {"c_puct_base", [](MctsParams& p) { p.c_puct_base = kInf; }},
      {"c_uct", [](MctsParams& p) { p.c_uct = -1; }},
      {"c_uct", [](MctsParams& p) { p.c_uct = kNaN; }},
      {"c_uct", [](MctsParams& p) { p.c_uct = kInf; }},
      {"pw_c", [](MctsParams& p) { p.pw_c = 0; }},
      {"pw_c", [](MctsParams& p) { p.pw_c = kInf; }},
      {"pw_alpha", [](MctsParams& p) { p.pw_alpha = 1.5; }},
      {"pw_alpha", [](MctsParams& p) { p.pw_alpha = kNaN; }},
      {"virtual_loss", [](MctsParams& p) { p.virtual_loss = -1; }},
      {"virtual_loss_value", [](MctsParams& p) { p.virtual_loss_value = kInf; }},
      {"rollout_mix", [](MctsParams& p) { p.rollout_mix = -0.1; }},
      {"rollout_mix", [](MctsParams& p) { p.rollout_mix = kNaN; }},
      {"dirichlet_epsilon", [](MctsParams& p) { p.dirichlet_epsilon = -0.1; }},
      {"dirichlet_epsilon", [](MctsParams& p) { p.dirichlet_epsilon = kNaN; }},
      {"dirichlet_alpha", [](MctsParams& p) { p.dirichlet_alpha = 0; }},
      {"dirichlet_alpha", [](MctsParams& p) { p.dirichlet_alpha = -0.3; }},
      {"dirichlet_alpha", [](MctsParams& p) { p.dirichlet_alpha = kInf; }},
      {"leaves_per_iteration", [](MctsParams& p) { p.leaves_per_iteration = 0; }},
      {"expand_k", [](MctsParams& p) { p.expand_k = 0; }},
  };
  for (const auto& c : mcts) {
    const std::string field = c.field;
    CAPTURE(field);
    MctsParams p;
    c.set(p);
    CHECK(rejection(p).rfind(field, 0) == 0);
  }
  struct BfCase {
    const char* field;
    std::function<void(BestFirstParams&)> set;
  };
  const std::vector<BfCase> bf = {
      {"lambda", [](BestFirstParams& p) { p.lambda = -1; }},
      {"lambda", [](BestFirstParams& p) { p.lambda = kNaN; }},
      {"lambda", [](BestFirstParams& p) { p.lambda = kInf; }},
      {"stop_threshold", [](BestFirstParams& p) { p.stop_threshold = -0.5; }},
      {"stop_threshold", [](BestFirstParams& p) { p.stop_threshold = kNaN; }},
      {"expand_k", [](BestFirstParams& p) { p.expand_k = 0; }},
      {"pops_per_iteration", [](BestFirstParams& p) { p.pops_per_iteration = 0; }},
      {"max_node_expansions", [](BestFirstParams& p) { p.max_node_expansions = 0; }},
      {"g_aggregation", [](BestFirstParams& p) { p.g_aggregation = Aggregation::Custom; }},
  };
  for (const auto& c : bf) {
    const std::string field = c.field;
    CAPTURE(field);
    BestFirstParams p;
    c.set(p);
    CHECK(rejection(p).rfind(field, 0) == 0);
  }
  // stop_threshold above 1 (or infinite) is the documented way to disable the early stop.
  BestFirstParams ok;
  ok.stop_threshold = kInf;
  CHECK(rejection(ok).empty());

  // The programmatic generator's error rate (its sampling "temperature").
  for (double e : {-0.1, 1.5, kNaN, kInf}) {
    CAPTURE(e);
    CHECK_THROWS_AS(game24::ProgrammaticGenerator({.error_rate = e}), InvalidArgument);
  }
}

// ---- plug-ins that break their contract, under every algorithm ---------------------------

namespace {

/// Every algorithm, plus the paths with extra plug-in calls: beam lookahead, MCTS rollouts,
/// best-of-n with ORM scoring.
std::vector<SearchParams> every_path() {
  BestOfNParams bon;
  bon.n = 4;
  BestOfNParams orm = bon;
  orm.scoring = Scoring::Orm;
  BeamParams beam;
  beam.num_beams = 4;
  beam.width = 2;
  BeamParams look = beam;
  look.lookahead = 2;
  DvtsParams dv;
  dv.n = 4;
  dv.width = 2;
  BestFirstParams bf;
  bf.max_expansions = 4;
  MctsParams mc;
  mc.num_simulations = 8;
  mc.expand_k = 2;
  MctsParams roll = mc;
  roll.eval = LeafEval::Rollout;
  return {bon, orm, beam, look, dv, bf, mc, roll};
}

std::string label(const SearchParams& p) {
  std::string s = algorithm_name(p);
  if (auto* b = std::get_if<BestOfNParams>(&p); b && b->scoring == Scoring::Orm) s += "+orm";
  if (auto* b = std::get_if<BeamParams>(&p); b && b->lookahead > 0) s += "+lookahead";
  if (auto* m = std::get_if<MctsParams>(&p); m && m->eval == LeafEval::Rollout) s += "+rollout";
  return s;
}

/// The PluginError message of running `p`, or "no error".
std::string plugin_error(const SearchParams& p, AnyGenerator& gen, FnVerifier& ver) {
  const auto ps = toy::problems(2);
  try {
    (void)run(ps, gen, ver, p, 5);
  } catch (const PluginError& e) {
    return e.what();
  }
  return "no error";
}

/// Steps whose logprob or token count is `lp` / `tokens`, `extra` more than asked.
AnyGenerator bad_steps(double lp, std::int32_t tokens, int extra, std::string name) {
  return gen_of(
      [=](std::span<const ExpandRequest> b) {
        std::vector<std::vector<Step>> out(b.size());
        for (std::size_t i = 0; i < b.size(); ++i)
          out[i].assign(extra > 0 ? static_cast<std::size_t>(b[i].num_candidates + extra) : 1,
                        Step{"x", {}, lp, tokens, FinishReason::StepEnd});
        return out;
      },
      std::move(name));
}

}  // namespace

TEST_CASE("a generator that throws, miscounts, returns NaN/inf or too many steps is named, in every algorithm") {
  FnVerifier prm;
  for (const auto& p : every_path()) {
    const std::string algo = label(p);
    CAPTURE(algo);
    auto thrower = gen_of(
        [](std::span<const ExpandRequest>) -> std::vector<std::vector<Step>> { throw std::runtime_error("boom"); },
        "thrower");
    CHECK(plugin_error(p, thrower, prm).find("'thrower' threw") != std::string::npos);

    auto miscount = gen_of(
        [](std::span<const ExpandRequest> b) { return std::vector<std::vector<Step>>(b.size() + 1); }, "miscount");
    CHECK(plugin_error(p, miscount, prm).find("'miscount' returned") != std::string::npos);

    for (double lp : {kNaN, kInf, 0.5}) {  // (-inf is a legal log-probability: a zero prior)
      CAPTURE(lp);
      auto bad = bad_steps(lp, 1, 0, "bad-logprob");
      CHECK(plugin_error(p, bad, prm).find("'bad-logprob' returned a step with logprob") != std::string::npos);
    }
    auto too_many = bad_steps(-1.0, 1, 1, "too-many");
    CHECK(plugin_error(p, too_many, prm).find("'too-many' returned") != std::string::npos);
    auto negative_tokens = bad_steps(-1.0, -3, 0, "neg-tokens");
    CHECK(plugin_error(p, negative_tokens, prm).find("'neg-tokens' returned a step with num_tokens < 0") !=
          std::string::npos);
  }
}

TEST_CASE("a verifier that throws, returns NaN, inf, out-of-range scores or the wrong count is named, in every algorithm") {
  for (const auto& p : every_path()) {
    const std::string algo = label(p);
    CAPTURE(algo);
    auto gen = toy_gen();
    const bool orm = std::holds_alternative<BestOfNParams>(p) && std::get<BestOfNParams>(p).scoring == Scoring::Orm;
    if (orm) {
      for (double x : {kNaN, kInf, -kInf, 1.5, -0.25}) {
        CAPTURE(x);
        FnVerifier v;
        v.label = "bad-orm";
        v.outcomes = [x](std::span<const OutcomeRequest> b) { return std::vector<double>(b.size(), x); };
        CHECK(plugin_error(p, gen, v).find("'bad-orm' returned") != std::string::npos);
      }
      FnVerifier v;
      v.label = "short-orm";
      v.outcomes = [](std::span<const OutcomeRequest> b) { return std::vector<double>(b.size() - 1, 0.5); };
      CHECK(plugin_error(p, gen, v).find("'short-orm' returned") != std::string::npos);
      v.label = "thrower-orm";
      v.outcomes = [](std::span<const OutcomeRequest>) -> std::vector<double> { throw std::runtime_error("boom"); };
      CHECK(plugin_error(p, gen, v).find("'thrower-orm' threw") != std::string::npos);
      continue;
    }
    FnVerifier thrower;
    thrower.label = "thrower-prm";
    thrower.steps = [](std::span<const StepScoreRequest>) -> std::vector<std::vector<double>> {
      throw std::runtime_error("boom");
    };
    CHECK(plugin_error(p, gen, thrower).find("'thrower-prm' threw") != std::string::npos);
    for (double x : {kNaN, kInf, -kInf, 1.5, -0.25}) {
      CAPTURE(x);
      FnVerifier v;
      v.label = "bad-prm";
      v.steps = [x](std::span<const StepScoreRequest> b) {
        std::vector<std::vector<double>> out(b.size());
        for (std::size_t i = 0; i < b.size(); ++i)
          out[i].assign(b[i].trajectory.size() - static_cast<std::size_t>(b[i].first_new), x);
        return out;
      };
      CHECK(plugin_error(p, gen, v).find("'bad-prm' returned") != std::string::npos);
    }
    FnVerifier short_batch;
    short_batch.label = "short-batch";
    short_batch.steps = [](std::span<const StepScoreRequest> b) { return std::vector<std::vector<double>>(b.size() - 1); };
    CHECK(plugin_error(p, gen, short_batch).find("'short-batch' returned") != std::string::npos);
    FnVerifier short_scores;
    short_scores.label = "short-scores";
    short_scores.steps = [](std::span<const StepScoreRequest> b) { return std::vector<std::vector<double>>(b.size()); };
    CHECK(plugin_error(p, gen, short_scores).find("'short-scores' returned 0 scores") != std::string::npos);
  }
}

TEST_CASE("empty proposals are dropped and counted in every algorithm; the search ends exhausted") {
  FnVerifier prm;
  const auto ps = toy::problems(2);
  for (const auto& p : every_path()) {
    const std::string algo = label(p);
    CAPTURE(algo);
    auto mute = gen_of([](std::span<const ExpandRequest> b) { return std::vector<std::vector<Step>>(b.size()); },
                       "mute");
    const auto rs = run(ps, mute, prm, p, 3);
    REQUIRE(rs.size() == 2);
    for (const auto& r : rs) {
      CHECK(r.stats.empty_proposals >= 1);
      CHECK_FALSE(r.answer.has_value());
      CHECK(r.candidates.empty());
      CHECK(r.stop == StopReason::Exhausted);
    }
  }
}

// ---- resource caps ---------------------------------------------------------------------

TEST_CASE("a long MCTS under a node cap stops gracefully with bounded tree and memory") {
  FnVerifier prm;
  auto gen = toy_gen(1000);  // effectively endless: only the cap can stop it
  const auto ps = toy::problems(2);
  MctsParams p;
  p.num_simulations = 100'000'000;
  p.max_depth = 1000;
  p.expand_k = 8;
  p.leaves_per_iteration = 16;
  p.eval = LeafEval::Mixed;  // rollouts add detached nodes: they count too
  p.keep_tree = true;
  auto capped = [&](std::int64_t cap) {
    p.budget.max_nodes = cap;
    const auto t0 = std::chrono::steady_clock::now();
    const auto rs = run(ps, gen, prm, p, 11);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE(rs.size() == 2);
    for (const auto& r : rs) {
      CHECK(r.stop == StopReason::Nodes);
      CHECK(r.stats.nodes <= cap);
      CHECK(r.stats.nodes >= cap - p.expand_k * p.leaves_per_iteration * 2);  // it used the cap
      REQUIRE(r.tree);
      CHECK(static_cast<std::int64_t>(r.tree->size()) == r.stats.nodes);
    }
    return s;
  };
  (void)capped(2000);  // warm-up: allocator pools, caches
  const std::size_t before = rss_bytes();
  const double seconds = capped(20000);
  const std::size_t after = rss_bytes();
  MESSAGE("20000-node cap: " << seconds << " s, RSS " << before / 1024 << " KiB -> " << after / 1024 << " KiB");
  // Two trees of 20000 nodes (~120 B a node, plus texts) are a few MB; without the cap the
  // search would run for 10^8 simulations. ASan's quarantine keeps freed memory resident,
  // so the RSS bound is only checked without it.
  if (!kAsan && before > 0) CHECK(after - std::min(after, before) < 64u * 1024u * 1024u);
  CHECK(seconds < 30.0);
}

TEST_CASE("every algorithm stops at the node cap with a huge budget knob") {
  // N = 10^7 chains: best-of-n and DVTS size their per-chain state by what the cap allows
  // (they took ~2 GB and ~1 GB before), so this is fast and small.
  FnVerifier prm;
  auto gen = toy_gen(200);
  const auto ps = toy::problems(1);
  BestOfNParams bon;
  bon.n = 10'000'000;
  BeamParams beam;
  beam.num_beams = 1'000'000;
  beam.width = 1000;
  DvtsParams dv;
  dv.n = 10'000'000;
  dv.width = 10;
  BestFirstParams bf;
  bf.max_expansions = 1'000'000;
  bf.stop_threshold = 2.0;
  MctsParams mc;
  mc.num_simulations = 1'000'000;
  for (SearchParams p : std::vector<SearchParams>{bon, beam, dv, bf, mc}) {
    const std::string algo = algorithm_name(p);
    CAPTURE(algo);
    common(p).max_depth = 200;
    common(p).budget.max_nodes = 3000;
    const auto rs = run(ps, gen, prm, p, 2);
    CHECK(rs[0].stop == StopReason::Nodes);
    CHECK(rs[0].stats.nodes <= 3000);
  }
}

TEST_CASE("under a node cap, best-of-n and DVTS give the same results as with chains to spare") {
  // The chains (subtrees) that the cap would never reach are not kept; results, curve and
  // votes must not change: N = 64 under a 40-node cap equals N = 4096 under the same cap.
  FnVerifier prm;
  auto gen = toy_gen(6);
  const auto ps = toy::problems(2);
  for (int width : {1, 4}) {
    CAPTURE(width);
    auto make = [&](int n) -> SearchParams {
      if (width == 1) {
        BestOfNParams p;
        p.n = n;
        p.budget.max_nodes = 40;
        return p;
      }
      DvtsParams p;
      p.n = n;
      p.width = width;
      p.budget.max_nodes = 40;
      return p;
    };
    const auto a = run(ps, gen, prm, make(64), 3);
    const auto b = run(ps, gen, prm, make(4096), 3);
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].answer == b[i].answer);
      CHECK(a[i].stop == b[i].stop);
      CHECK(a[i].stats.nodes == b[i].stats.nodes);
      REQUIRE(a[i].candidates.size() == b[i].candidates.size());
      for (std::size_t c = 0; c < a[i].candidates.size(); ++c) CHECK(a[i].candidates[c].node == b[i].candidates[c].node);
      if (width == 1) {
        REQUIRE(b[i].curve.size() >= a[i].curve.size());
        for (std::size_t k = 0; k < b[i].curve.size(); ++k) {
          const auto& pa = a[i].curve[std::min(k, a[i].curve.size() - 1)];
          CHECK(b[i].curve[k].weighted == pa.weighted);
          CHECK(b[i].curve[k].majority == pa.majority);
        }
      }
    }
  }
}
