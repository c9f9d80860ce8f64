// Tasks by name (tasks/registry.hpp): AnyTask and the Game of 24 entry (tasks/game24/entry.hpp).
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include <qstar/search/run.hpp>
#include <qstar/tasks/game24.hpp>
#include <qstar/tasks/game24/entry.hpp>
#include <qstar/tasks/registry.hpp>

#include "../support/toy.hpp"

using namespace qstar;

TEST_CASE("AnyTask forwards to the task; a task without a checker reports none") {
  const AnyTask g(game24::Game24Task{});
  const game24::Game24Task direct;
  const Problem p{"1", "4 5 6 10", std::nullopt};
  CHECK(g.format(p) == direct.format(p));
  CHECK(g.has_check());
  CHECK(g.check(p, "(5 - 4) * 6 * (10 - 6)") == direct.check(p, "(5 - 4) * 6 * (10 - 6)"));
  CHECK(g.canonicalize("6 * 4") == direct.canonicalize("6 * 4"));
  Step s;
  s.text = "Answer: (10 - 4) * (5 - 6 + 5) = 24";
  CHECK(g.is_terminal(s) == direct.is_terminal(s));

  struct Unchecked {
    std::string format(const Problem& q) const { return q.text; }
    bool is_terminal(const Step&) const { return true; }
    std::optional<std::string> extract_answer(const TrajectoryView&) const { return "x"; }
    std::string canonicalize(std::string_view a) const { return std::string(a); }
  };
  const AnyTask u(Unchecked{});
  CHECK_FALSE(u.has_check());
  CHECK_FALSE(u.check(p, "x"));
}

TEST_CASE("a search through AnyTask equals the search with the concrete task") {
  const auto e = game24::task_entry();
  const AnyTask task = e.make_task();
  const std::vector<Problem> problems = game24::load_csv(QSTAR_TEST_DATA, std::pair{901, 906});
  auto [gen, label] = e.generators.at("programmatic").make({});
  CHECK(label == "programmatic(err=0.1)");
  VerifierSet oracle = e.verifiers.at("oracle").make();
  BeamParams bp;
  bp.num_beams = 8;
  const auto via_entry = run_search(problems, task, gen, &oracle, bp, 3);
  game24::GeneratorParams gp;
  gp.error_rate = 0.1;
  game24::ProgrammaticGenerator g2(gp);
  game24::OracleStepVerifier v2;
  const auto direct = beam_search(problems, game24::Game24Task{}, g2, v2, bp, 3);
  REQUIRE(via_entry.size() == direct.size());
  for (std::size_t i = 0; i < direct.size(); ++i) {
    CHECK(via_entry[i].answer == direct[i].answer);
    CHECK(via_entry[i].correct == direct[i].correct);
    CHECK(via_entry[i].stats.generated_tokens == direct[i].stats.generated_tokens);
  }
}

TEST_CASE("the game24 entry: parser, loader, plug-in options; the registry by name") {
  const auto e = game24::task_entry();
  CHECK(e.name == "game24");
  CHECK(e.parse_problem("4 5 6 10").text == "4 5 6 10");
  CHECK_THROWS_AS(e.parse_problem("4 5 x 10"), ParseError);
  CHECK(e.load_data(QSTAR_TEST_DATA, std::pair{901, 1000}, {}).size() == 100);
  CHECK(e.default_data == "game24/24.csv");
  const auto& prog = e.generators.at("programmatic");
  CHECK(prog.options == std::vector<std::string>{"error-rate"});
  CHECK(prog.make({{"error-rate", "0.25"}}).second == "programmatic(err=0.25)");
  CHECK_THROWS_WITH_AS(prog.make({{"error-rate", "2"}}), doctest::Contains("error_rate"), InvalidArgument);
  CHECK_THROWS_WITH_AS(prog.make({{"error-rate", "x"}}), doctest::Contains("--error-rate: 'x'"), InvalidArgument);
  const VerifierSet oracle = e.verifiers.at("oracle").make();
  CHECK(oracle.step.has_value());
  CHECK(oracle.outcome.has_value());

  TaskRegistry r;
  r.add(game24::task_entry());
  CHECK(r.names() == std::vector<std::string>{"game24"});
  CHECK(&r.at("game24") == r.find("game24"));
  CHECK_THROWS_WITH_AS(r.at("chess"), "task: 'chess' is not one of game24", InvalidArgument);
  CHECK_THROWS_WITH_AS(r.add(game24::task_entry()), "task: 'game24' is registered twice", InvalidArgument);
  TaskEntry toy;
  toy.name = "toy";
  toy.make_task = [] { return AnyTask(toy::ToyTask{}); };
  r.add(toy);
  CHECK(r.names() == std::vector<std::string>{"game24", "toy"});
  CHECK(r.at("toy").make_task().has_check());
}
