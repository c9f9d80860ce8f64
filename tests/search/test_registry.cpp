// The algorithm registry (search/registry.hpp) and the boundary's verifier resolution
// (search/run.hpp).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <qstar/core/trace.hpp>
#include <qstar/search/named_params.hpp>
#include <qstar/search/run.hpp>

#include "../support/toy.hpp"

using namespace qstar;

namespace {

std::vector<Problem> toy_problems(int n) {
  std::vector<Problem> ps;
  for (int i = 0; i < n; ++i) ps.push_back({"p" + std::to_string(i), "toy " + std::to_string(i), "1"});
  return ps;
}

std::vector<std::string> answers(const std::vector<SearchResult>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.answer.value_or("-") + "|" + std::to_string(r.stats.verifier_calls));
  return out;
}

}  // namespace

TEST_CASE("the registry names every algorithm once, with its traits") {
  const auto names = algorithm_names();
  CHECK(names == std::vector<std::string>{"best-of-n", "beam", "dvts", "best-first", "mcts", "particle-filter", "rebase",
                                          "adaptive-best-of-n", "deepconf"});
  for (const auto& name : names) {
    const SearchParams p = default_params(name);
    CHECK(std::string(algorithm_name(p)) == name);
    CHECK(canonical_algorithm(name) == name);
    CHECK(needs_step_verifier(p) == (name != "best-of-n" && name != "adaptive-best-of-n" && name != "deepconf"));
    // The budget field is a named field, and budget()/set_budget() read and write it.
    const auto fields = param_names(p);
    CHECK(std::find(fields.begin(), fields.end(), std::string(budget_field(p))) != fields.end());
    SearchParams q = p;
    set_budget(q, 2);
    CHECK(budget(q) == 2);
    CHECK(params_to_json(q).get_int(std::string(budget_field(p))) == 2);
  }
  CHECK(canonical_algorithm("bon") == "best-of-n");
  CHECK(!find_algorithm("bogo"));
  CHECK_THROWS_WITH_AS(default_params("bogo"),
                       "algo must be one of best-of-n, beam, dvts, best-first, mcts, particle-filter, rebase, "
                       "adaptive-best-of-n, deepconf (got 'bogo')",
                       InvalidArgument);
  // A budget below the width shrinks the width; above it leaves it.
  SearchParams beam = default_params("beam");
  set_budget(beam, 2);
  CHECK(std::get<BeamParams>(beam).width == 2);
  set_budget(beam, 64);
  CHECK(std::get<BeamParams>(beam).width == 2);
  CHECK(budget(default_params("mcts")) == MctsParams{}.num_simulations);
}

TEST_CASE("every command-line flag of an algorithm names one of its fields") {
  for_each_algorithm([](auto t) {
    using P = typename decltype(t)::type;
    P p;
    for (const auto& f : AlgorithmTraits<P>::flags) {
      bool found = false, is_bool = false;
      for_each_field(p, [&](std::string_view name, const auto& field) {
        if (name != f.field) return;
        found = true;
        is_bool = std::is_same_v<std::decay_t<decltype(field)>, bool>;
      });
      CAPTURE(f.flag);
      CHECK(found);
      if (f.invert) CHECK(is_bool);
    }
  });
}

TEST_CASE("run_search resolves the verifier like search() with the matching plug-in") {
  const auto problems = toy_problems(3);
  const toy::ToyTask task;
  AnyGenerator gen(toy::ToyGenerator{});
  toy::ToyPrm prm;
  SearchParams beam = default_params("beam");
  set_budget(beam, 4);
  SearchParams bon = default_params("best-of-n");
  set_budget(bon, 4);

  VerifierSet both;
  both.step.emplace(prm);
  both.outcome.emplace(prm);
  both.label = "toy";
  toy::ToyGenerator g2;
  CHECK(answers(run_search(problems, task, gen, &both, beam, 7)) == answers(search(problems, task, g2, prm, beam, 7)));

  // No verifier: best-of-n is plain majority, the others refuse before running.
  NoVerifier none;
  CHECK(answers(run_search(problems, task, gen, nullptr, bon, 7)) == answers(search(problems, task, g2, none, bon, 7)));
  CHECK_THROWS_WITH_AS(run_search(problems, task, gen, nullptr, beam, 7),
                       doctest::Contains("needs a verifier"), InvalidArgument);
  VerifierSet empty;
  CHECK(answers(run_search(problems, task, gen, &empty, bon, 7)) == answers(search(problems, task, g2, none, bon, 7)));

  // Outcome scores only: best-of-n "auto" ranks by the ORM; beam refuses, naming the label.
  VerifierSet orm;
  orm.outcome.emplace(prm);
  orm.label = "orm-only";
  BestOfNParams as_orm = std::get<BestOfNParams>(bon);
  as_orm.scoring = Scoring::Orm;
  CHECK(answers(run_search(problems, task, gen, &orm, bon, 7)) ==
        answers(best_of_n(problems, task, g2, prm, as_orm, 7)));
  CHECK_THROWS_WITH_AS(check_verifier(beam, &orm), doctest::Contains("'orm-only' has only outcome scores"),
                       InvalidArgument);
  // scoring "none" ignores the verifier: no verifier calls.
  SearchParams bon_none = bon;
  std::get<BestOfNParams>(bon_none).scoring = Scoring::None;
  for (const auto& r : run_search(problems, task, gen, &both, bon_none, 7)) CHECK(r.stats.verifier_calls == 0);
  // A missing half asked for explicitly names the verifier.
  SearchParams bon_prm = bon;
  std::get<BestOfNParams>(bon_prm).scoring = Scoring::Prm;
  CHECK_THROWS_WITH_AS(run_search(problems, task, gen, &orm, bon_prm, 7), doctest::Contains("'orm-only' has no step scores"),
                       std::exception);
}
