// Params by field name (the bindings' keyword arguments) and results as JSON.
#include <doctest/doctest.h>

#include <string>

#include <qstar/core/json.hpp>
#include <qstar/search/named_params.hpp>
#include <qstar/search/result_json.hpp>
#include <qstar/tasks/game24.hpp>

using namespace qstar;

namespace {
std::string error_of(const std::string& algo, std::vector<std::pair<std::string, ParamValue>> values) {
  try {
    make_params(algo, values);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("every field of every params struct is named, with its default") {
  for (const char* algo : {"best-of-n", "beam", "dvts", "best-first", "mcts"}) {
    const SearchParams p = default_params(algo);
    const json::Value j = params_to_json(p);
    const auto names = param_names(p);
    REQUIRE(j.size() == names.size());
    // Setting every field to its own value gives the same params back.
    std::vector<std::pair<std::string, ParamValue>> values;
    for (const auto& [k, v] : j.as_object()) {
      if (v.is_bool()) values.emplace_back(k, v.as_bool());
      else if (v.is_integer()) values.emplace_back(k, v.as_int());
      else if (v.is_double()) values.emplace_back(k, v.as_double());
      else values.emplace_back(k, v.as_string());
    }
    CHECK(json::dump(params_to_json(make_params(algo, values))) == json::dump(j));
  }
  const auto beam = params_to_json(default_params("beam"));
  CHECK(beam.get_int("num_beams") == BeamParams{}.num_beams);
  CHECK(beam.get_string("aggregation") == "last");
  CHECK(beam.get_int("budget.max_nodes") == 0);
  const auto mcts = params_to_json(default_params("mcts"));
  CHECK(mcts.get_string("selection") == "puct");
  CHECK(mcts.get_double("c_puct_init") == MctsParams{}.c_puct_init);
}

TEST_CASE("set_param converts and validates, naming the field") {
  SearchParams p = make_params("mcts", {{"num_simulations", std::int64_t{8}},
                                        {"selection", std::string("uct")},
                                        {"c_uct", std::int64_t{2}},
                                        {"budget.max_wall_seconds", 1.5},
                                        {"normalize_q", true}});
  const auto& m = std::get<MctsParams>(p);
  CHECK(m.num_simulations == 8);
  CHECK(m.selection == SelectionRule::Uct);
  CHECK(m.c_uct == 2.0);
  CHECK(m.budget.max_wall_seconds == 1.5);
  CHECK(m.normalize_q);

  CHECK(error_of("beam", {{"width", std::int64_t{3}}}) == "num_beams must be a multiple of width");
  CHECK(error_of("beam", {{"width", std::string("3")}}) == "width: expected an integer, got a string");
  CHECK(error_of("beam", {{"width", std::int64_t{1} << 40}}).rfind("width: 1099511627776 is out of range", 0) == 0);
  CHECK(error_of("beam", {{"dedup", std::int64_t{1}}}) == "dedup: expected a bool, got an integer");
  CHECK(error_of("beam", {{"voting", std::string("best")}}) ==
        "voting: 'best' is not one of naive, majority, weighted, topk");
  CHECK(error_of("beam", {{"n", std::int64_t{4}}}).rfind("n: 'beam' has no parameter of that name", 0) == 0);
  CHECK(error_of("mcts", {{"budget.max_nodes", std::int64_t{1}}}) == "budget.max_nodes must be 0 (no cap) or >= 2");
  CHECK(error_of("beam", {{"custom_aggregation", std::string("x")}}).rfind("custom_aggregation:", 0) == 0);
  CHECK(error_of("best-first", {{"lambda", 0.5}}).empty());
  CHECK_THROWS_AS(make_params("astar", {}), InvalidArgument);
}

TEST_CASE("results as JSON") {
  const std::vector<Problem> problems{{"p", "4 5 6 10", std::nullopt}};
  game24::Game24Task task;
  game24::ProgrammaticGenerator gen;
  game24::OracleStepVerifier prm;
  BeamParams params;
  params.keep_tree = true;
  const auto r = beam_search(std::span<const Problem>(problems), task, gen, prm, params, 3).at(0);
  const json::Value j = result_to_json(r);
  CHECK(j.at("problem").get_string("text") == "4 5 6 10");
  CHECK(j.get_string("stop_reason") == to_string(r.stop));
  CHECK(j.get_array("candidates").size() == r.candidates.size());
  CHECK(j.at("stats").get_int("generated_tokens") == r.stats.generated_tokens);
  CHECK(j.get_array("steps").size() == r.steps().size());
  // JSON text parses back to the same value.
  CHECK(json::parse(json::dump(j)) == j);

  const json::Value t = tree_to_nested_json(*r.tree);
  std::size_t count = 0;
  std::vector<const json::Value*> stack{&t};
  while (!stack.empty()) {
    const json::Value* n = stack.back();
    stack.pop_back();
    ++count;
    for (const auto& c : n->get_array("children")) stack.push_back(&c);
    for (const auto& c : n->get_array("rollouts")) stack.push_back(&c);
  }
  CHECK(count == r.tree->size());
  CHECK(t.get_int("id") == 0);
}
