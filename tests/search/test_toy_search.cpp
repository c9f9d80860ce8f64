// Search behaviour that needs no task knowledge: scripted trees with known values,
// determinism, batch invariance, budgets and plug-in contract violations.
#include <doctest/doctest.h>

#include <qstar/adapters/batch_split.hpp>
#include <qstar/adapters/callable.hpp>
#include <qstar/core/trace.hpp>
#include <qstar/search/search.hpp>

#include "../support/toy.hpp"

using namespace qstar;

namespace {

std::vector<SearchParams> all_algorithms() {
  BestOfNParams bon;
  bon.n = 8;
  BeamParams beam;
  beam.num_beams = 8;
  beam.width = 2;
  DvtsParams dv;
  dv.n = 8;
  dv.width = 2;
  BestFirstParams bf;
  bf.max_expansions = 12;
  bf.stop_threshold = 2.0;
  MctsParams mc;
  mc.num_simulations = 24;
  mc.leaves_per_iteration = 4;
  mc.expand_k = 3;
  ParticleFilterParams pf;
  pf.num_particles = 8;
  RebaseParams rb;
  rb.n = 8;
  // adaptive-best-of-n and deepconf have tests of their own (test_adaptive_bon.cpp,
  // test_deepconf.cpp): a mute generator costs adaptive one iteration per round, and
  // deepconf needs token log-probabilities.
  return {bon, beam, dv, bf, mc, pf, rb};
}

}  // namespace

TEST_CASE("MCTS on a scripted tree converges to the best branch") {
  toy::Scripted s;
  // Root: three branches; only "good" leads to high-value steps and the right answer.
  s.tree[""] = {{"bad1", 0.45}, {"good", 0.4}, {"bad2", 0.5}};
  s.tree["bad1"] = {{"ans:0", 0.1, true}, {"ans:3", 0.15, true}};
  s.tree["bad2"] = {{"ans:2", 0.2, true}, {"ans:5", 0.1, true}};
  s.tree["good"] = {{"ans:1", 0.95, true}, {"ans:4", 0.9, true}};
  toy::ToyTask task;
  const auto ps = toy::problems(1);
  for (auto rule : {SelectionRule::Puct, SelectionRule::Uct}) {
    MctsParams p;
    p.num_simulations = 60;
    p.leaves_per_iteration = 2;
    p.expand_k = 2;
    p.progressive_widening = false;
    p.selection = rule;
    p.keep_tree = true;
    CAPTURE(static_cast<int>(rule));
    auto rs = mcts_search(std::span<const Problem>(ps), task, s, s, p, 7);
    REQUIRE(rs.size() == 1);
    const Tree& t = *rs[0].tree;
    // The most visited root child is "good", and the answer is its best leaf.
    NodeId best = kNoNode;
    for (NodeId c : t.children(Tree::root()))
      if (best == kNoNode || t[c].visits > t[best].visits) best = c;
    REQUIRE(best != kNoNode);
    CHECK(t.text(best) == "good");
    CHECK(rs[0].answer == std::optional<std::string>("1"));
    CHECK(rs[0].correct == std::optional<bool>(true));
    // Virtual losses are all removed after the search.
    for (const auto& n : t.nodes()) CHECK(n.virtual_loss == 0);
  }
}

TEST_CASE("MCTS backup: visits add up and Q is the mean of backed-up values") {
  toy::Scripted s;
  s.tree[""] = {{"a", 0.2}, {"b", 0.6}};
  s.tree["a"] = {{"ans:1", 1.0, true}};
  s.tree["b"] = {{"ans:2", 0.0, true}};
  toy::ToyTask task;
  const auto ps = toy::problems(1);
  MctsParams p;
  p.num_simulations = 1;
  p.leaves_per_iteration = 1;
  p.expand_k = 2;
  p.progressive_widening = false;
  p.keep_tree = true;
  auto rs = mcts_search(std::span<const Problem>(ps), task, s, s, p, 1);
  const Tree& t = *rs[0].tree;
  // One simulation: root expanded into a (0.2) and b (0.6); each backed up once.
  CHECK(t[Tree::root()].visits == 2);
  CHECK(t[Tree::root()].value_sum == doctest::Approx(0.8));
  CHECK(t[1].visits == 1);
  CHECK(t[1].q() == doctest::Approx(0.2));
  CHECK(t[2].q() == doctest::Approx(0.6));
  // Priors: uniform logprobs -> equal priors summing to 1.
  CHECK(t[1].prior == doctest::Approx(0.5));
}

TEST_CASE("progressive widening grows children only while children < ceil(C * N^alpha)") {
  toy::Scripted s;
  s.tree[""] = {{"a", 0.5}, {"b", 0.6}, {"c", 0.7}, {"d", 0.4}, {"e", 0.3}};
  for (const char* k : {"a", "b", "c", "d", "e"}) s.tree[k] = {{"ans:1", 0.5, true}};
  toy::ToyTask task;
  const auto ps = toy::problems(1);
  MctsParams p;
  p.num_simulations = 16;
  p.leaves_per_iteration = 1;
  p.progressive_widening = true;
  p.keep_tree = true;
  auto rs = mcts_search(std::span<const Problem>(ps), task, s, s, p, 3);
  const Tree& t = *rs[0].tree;
  const int children = t[Tree::root()].num_children;
  CHECK(children >= 2);
  CHECK(children <= static_cast<int>(std::ceil(std::sqrt(static_cast<double>(t[Tree::root()].visits)))) + 1);
}

TEST_CASE("progressive widening counts real visits, not virtual losses, with batched picks") {
  toy::ToyTask task;
  toy::ToyGenerator g;
  g.depth = 6;
  toy::ToyPrm v;
  const auto ps = toy::problems(1);
  for (int B : {1, 4, 8}) {
    CAPTURE(B);
    MctsParams p;
    p.num_simulations = 64;
    p.leaves_per_iteration = B;
    p.progressive_widening = true;
    p.max_depth = 8;
    p.keep_tree = true;
    const auto rs = mcts_search(std::span<const Problem>(ps), task, g, v, p, 5);
    const Tree& t = *rs[0].tree;
    // Every node with children respects children <= ceil(C * N^alpha) for its final N,
    // where a node only widens while children < ceil(sqrt(N)) at the time.
    for (NodeId id = 0; id < static_cast<NodeId>(t.size()); ++id) {
      const Node& n = t[id];
      if (n.num_children == 0) continue;
      CHECK(n.virtual_loss == 0);
      CHECK(n.num_children <= std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n.visits))))));
    }
  }
}

TEST_CASE("a generator that proposes nothing ends every search as exhausted, quickly") {
  toy::ToyTask task;
  auto mute = make_generator([](std::span<const ExpandRequest> b) { return std::vector<std::vector<Step>>(b.size()); }, "mute");
  toy::ToyPrm v;
  const auto ps = toy::problems(2);
  for (auto params : all_algorithms()) {
    const std::string algo = algorithm_name(params);
    CAPTURE(algo);
    if (auto* m = std::get_if<MctsParams>(&params)) m->num_simulations = 100000;
    const auto rs = search(std::span<const Problem>(ps), task, mute, v, params, 1);
    for (const auto& r : rs) {
      CHECK(r.stop == StopReason::Exhausted);
      CHECK(!r.answer);
      CHECK(r.stats.iterations <= 3);
    }
  }
}

TEST_CASE("best-first stops and ranks by its g aggregation") {
  toy::Scripted s;
  // Path a: 0.1 then 0.995 (min 0.1, last 0.995). Path b: 0.9 then 0.95 (min 0.9).
  s.tree[""] = {{"a", 0.1}, {"b", 0.9}};
  s.tree["a"] = {{"ans:1", 0.995, true}};
  s.tree["b"] = {{"ans:2", 0.95, true}};
  toy::ToyTask task;
  const auto ps = toy::problems(1);
  BestFirstParams p;
  p.expand_k = 2;
  p.pops_per_iteration = 1;
  p.max_node_expansions = 1;
  p.stop_threshold = 0.9;
  const auto rs = best_first(std::span<const Problem>(ps), task, s, s, p, 1);
  CHECK(rs[0].answer == std::optional<std::string>("2"));
  CHECK(rs[0].stop == StopReason::Solved);
}

TEST_CASE("every algorithm is deterministic for a seed and batch-invariant") {
  toy::ToyTask task;
  const auto ps = toy::problems(3);
  for (auto params : all_algorithms()) {
    const std::string algo = algorithm_name(params);
    CAPTURE(algo);
    common(params).keep_tree = true;
    toy::ToyGenerator g1, g64, g1b;
    g1.max_batch = 1;
    g64.max_batch = 64;
    toy::ToyPrm v1, v64;
    v1.max_batch = 1;
    v64.max_batch = 64;
    const auto a = search(std::span<const Problem>(ps), task, g1, v1, params, 42);
    const auto b = search(std::span<const Problem>(ps), task, g64, v64, params, 42);
    const auto c = search(std::span<const Problem>(ps), task, g1b, v64, params, 42);
    const auto d = search(std::span<const Problem>(ps), task, g64, v64, params, 43);
    CHECK(toy::traces(a) == toy::traces(b));
    CHECK(toy::traces(a) == toy::traces(c));
    CHECK(toy::traces(a) != toy::traces(d));
    // Searching a problem alone gives the same tree as searching it with others.
    const auto alone = search(std::span<const Problem>(ps).subspan(1, 1), task, g64, v64, params, 42);
    REQUIRE(alone.size() == 1);
    CHECK(toy::traces(alone) == write_trace_line(a[1].problem, *a[1].tree, a[1].answer, a[1].correct,
                                            to_string(a[1].stop)) + "\n");
  }
}

TEST_CASE("each iteration makes one generator call with every frontier node of every problem") {
  toy::ToyTask task;
  const auto ps = toy::problems(4);
  std::vector<std::size_t> log;
  toy::ToyGenerator g;
  g.batch_log = &log;
  toy::ToyPrm v;
  BeamParams p;
  p.num_beams = 8;
  p.width = 2;
  auto rs = beam_search(std::span<const Problem>(ps), task, g, v, p, 5);
  // Depth 3: iteration 1 has one root request per problem, then 4 beams per problem.
  REQUIRE(log.size() == 3);
  CHECK(log[0] == 4);
  CHECK(log[1] == 16);
  CHECK(log[2] == 16);
  for (const auto& r : rs) {
    CHECK(r.stats.generator_calls == 3);
    CHECK(r.stats.verifier_calls == 3);
    CHECK(r.stats.generator_batches.total() == 3);
  }
}

TEST_CASE("budgets are never exceeded and the stop reason says which cap stopped the search") {
  toy::ToyTask task;
  const auto ps = toy::problems(2);
  for (auto params : all_algorithms()) {
    const std::string algo = algorithm_name(params);
    CAPTURE(algo);
    struct Case {
      const char* what;
      Budget b;
      StopReason reason;
    };
    Budget tok, ver, calls, nodes;
    tok.max_generated_tokens = 20;
    ver.max_verifier_tokens = 15;
    calls.max_generator_calls = 2;
    nodes.max_nodes = 6;
    const bool has_verifier = params.index() != 0;
    std::vector<Case> cases = {{"generated tokens", tok, StopReason::GeneratedTokens},
                               {"generator calls", calls, StopReason::GeneratorCalls},
                               {"nodes", nodes, StopReason::Nodes}};
    if (has_verifier) cases.push_back({"verifier tokens", ver, StopReason::VerifierTokens});
    for (const auto& c : cases) {
      const std::string what = c.what;
      CAPTURE(what);
      common(params).budget = c.b;
      common(params).keep_tree = true;
      toy::ToyGenerator g;
      toy::ToyPrm v;
      const auto rs = has_verifier ? search(std::span<const Problem>(ps), task, g, v, params, 9)
                                   : search(std::span<const Problem>(ps), task, g, v, params, 9);
      for (const auto& r : rs) {
        if (c.b.max_generated_tokens) CHECK(r.stats.generated_tokens <= c.b.max_generated_tokens);
        if (c.b.max_verifier_tokens) CHECK(r.stats.verifier_tokens <= c.b.max_verifier_tokens);
        if (c.b.max_generator_calls) CHECK(r.stats.generator_calls <= c.b.max_generator_calls);
        if (c.b.max_nodes) CHECK(r.stats.nodes <= c.b.max_nodes);
        CHECK(static_cast<std::int64_t>(r.tree->size()) == r.stats.nodes);
        CHECK(r.stop == c.reason);
      }
    }
  }
}

TEST_CASE("wall-time cap stops the search") {
  toy::ToyTask task;
  const auto ps = toy::problems(1);
  MctsParams p;
  p.num_simulations = 1000000;
  p.budget.max_wall_seconds = 0.05;
  toy::ToyGenerator g;
  g.depth = 50;
  p.max_depth = 60;
  toy::ToyPrm v;
  const auto rs = mcts_search(std::span<const Problem>(ps), task, g, v, p, 1);
  CHECK(rs[0].stop == StopReason::WallTime);
}

TEST_CASE("plug-ins that break their contract raise PluginError naming the plug-in") {
  toy::ToyTask task;
  const auto ps = toy::problems(2);
  BeamParams p;
  p.num_beams = 4;
  p.width = 2;
  toy::ToyPrm prm;
  toy::ToyGenerator good;
  auto check_msg = [](auto&& fn, const char* needle) {
    try {
      fn();
      FAIL("expected PluginError");
    } catch (const PluginError& e) {
      CHECK(std::string(e.what()).find(needle) != std::string::npos);
    }
  };
  SUBCASE("generator throws") {
    auto g = make_generator([](std::span<const ExpandRequest>) -> std::vector<std::vector<Step>> {
      throw std::runtime_error("boom");
    }, "thrower");
    check_msg([&] { beam_search(std::span<const Problem>(ps), task, g, prm, p, 1); }, "'thrower' threw");
    try {
      beam_search(std::span<const Problem>(ps), task, g, prm, p, 1);
    } catch (const PluginError& e) {
      // The original exception is nested inside.
      bool inner = false;
      try {
        std::rethrow_if_nested(e);
      } catch (const std::runtime_error& r) {
        inner = std::string(r.what()) == "boom";
      }
      CHECK(inner);
    }
  }
  SUBCASE("generator returns the wrong number of results") {
    auto g = make_generator([](std::span<const ExpandRequest> b) { return std::vector<std::vector<Step>>(b.size() + 1); }, "miscount");
    check_msg([&] { beam_search(std::span<const Problem>(ps), task, g, prm, p, 1); }, "'miscount' returned 3 results for a batch of 2");
  }
  SUBCASE("generator returns more steps than asked") {
    auto g = make_generator([](std::span<const ExpandRequest> b) {
      std::vector<std::vector<Step>> out(b.size());
      for (std::size_t i = 0; i < b.size(); ++i) out[i].resize(static_cast<std::size_t>(b[i].num_candidates) + 1);
      return out;
    }, "greedy-gen");
    check_msg([&] { beam_search(std::span<const Problem>(ps), task, g, prm, p, 1); }, "'greedy-gen' returned");
  }
  SUBCASE("generator returns NaN logprob") {
    auto g = make_generator([](std::span<const ExpandRequest> b) {
      std::vector<std::vector<Step>> out(b.size());
      for (auto& o : out) o.push_back(Step{"x", {}, std::nan(""), 1, FinishReason::StepEnd});
      return out;
    }, "nan-gen");
    check_msg([&] { beam_search(std::span<const Problem>(ps), task, g, prm, p, 1); }, "'nan-gen' returned a step with logprob");
  }
  SUBCASE("verifier returns NaN, inf, out of range, or the wrong count") {
    const std::vector<double> bad = {std::nan(""), INFINITY, 1.5, -0.1};
    for (double x : bad) {
      auto v = make_step_verifier([x](std::span<const StepScoreRequest> b) {
        std::vector<std::vector<double>> out(b.size());
        for (std::size_t i = 0; i < b.size(); ++i) out[i].assign(b[i].trajectory.size() - static_cast<std::size_t>(b[i].first_new), x);
        return out;
      }, "bad-prm");
      check_msg([&] { beam_search(std::span<const Problem>(ps), task, good, v, p, 1); }, "'bad-prm' returned");
    }
    auto v = make_step_verifier([](std::span<const StepScoreRequest> b) { return std::vector<std::vector<double>>(b.size()); }, "short-prm");
    check_msg([&] { beam_search(std::span<const Problem>(ps), task, good, v, p, 1); }, "'short-prm' returned 0 scores");
  }
  SUBCASE("empty proposals are dropped and counted") {
    auto g = make_generator([](std::span<const ExpandRequest> b) { return std::vector<std::vector<Step>>(b.size()); }, "mute");
    const auto rs = beam_search(std::span<const Problem>(ps), task, g, prm, p, 1);
    for (const auto& r : rs) {
      CHECK(r.stats.empty_proposals == 1);
      CHECK(!r.answer);
      CHECK(r.stop == StopReason::Exhausted);
    }
  }
}

TEST_CASE("params validate() names the field") {
  auto msg = [](auto p) {
    try {
      p.validate();
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  BestOfNParams b;
  b.n = 0;
  CHECK(msg(b).rfind("n must", 0) == 0);
  BeamParams beam;
  beam.width = 32;
  CHECK(msg(beam).rfind("width must be <= num_beams", 0) == 0);
  beam = {};
  beam.num_beams = 6;
  beam.width = 4;
  CHECK(msg(beam).rfind("num_beams must be a multiple", 0) == 0);
  MctsParams m;
  m.dirichlet_epsilon = 2;
  CHECK(msg(m).rfind("dirichlet_epsilon", 0) == 0);
  m = {};
  m.budget.max_generated_tokens = -1;
  CHECK(msg(m).rfind("budget.max_generated_tokens", 0) == 0);
  BestFirstParams bf;
  bf.lambda = -1;
  CHECK(msg(bf).rfind("lambda", 0) == 0);
  DvtsParams d;
  d.n = 10;
  d.width = 4;
  CHECK(msg(d).rfind("n must be a multiple", 0) == 0);
  CHECK_THROWS_AS(default_params("nope"), InvalidArgument);
}
