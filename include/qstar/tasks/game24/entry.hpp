// Game of 24 as a registered task (qstar/tasks/registry.hpp): `--task game24`. Its data is
// the ToT 24.csv (load_csv, ranks by the Rank column); its own plug-ins are the programmatic
// generator (`--generator programmatic`, option error-rate, default 0.1) and the exact
// oracle (`--verifier oracle`: step and outcome scores; `--orm oracle`: the outcome half).
#pragma once

#include <cmath>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "qstar/tasks/game24/csv.hpp"
#include "qstar/tasks/game24/oracle.hpp"
#include "qstar/tasks/game24/proposer.hpp"
#include "qstar/tasks/game24/task.hpp"
#include "qstar/tasks/registry.hpp"

namespace qstar::game24 {

/// The entry `qstar` and the Python bindings register under the name "game24".
inline TaskEntry task_entry() {
  TaskEntry e;
  e.name = "game24";
  e.summary = "Game of 24 (Tree of Thoughts): make 24 from four numbers 1-13 with + - * /";
  e.make_task = [] { return AnyTask(Game24Task{}); };
  e.parse_problem = [](const std::string& text) {
    parse_puzzle(text);  // ParseError names the puzzle
    return Problem{"cli", text, std::nullopt};
  };
  e.example = "4 5 6 10";
  e.answer_marker = std::string(Game24Task::answer_marker());
  e.load_data = [](const std::string& path, std::optional<std::pair<int, int>> ranks, const PluginOptions&) {
    return load_csv(path, ranks);
  };
  e.default_data = "game24/24.csv";
  TaskGenerator programmatic;
  programmatic.options = {"error-rate"};
  programmatic.make = [](const PluginOptions& o) {
    GeneratorParams gp;
    gp.error_rate = 0.1;
    if (auto it = o.find("error-rate"); it != o.end()) {
      std::size_t used = 0;
      double v = 0;
      try {
        v = std::stod(it->second, &used);
      } catch (...) {
        used = 0;
      }
      if (used == 0 || used != it->second.size() || !std::isfinite(v))
        throw InvalidArgument(fmt::format("--error-rate: '{}' is not a number", it->second));
      gp.error_rate = v;
    }
    try {
      gp.validate();
    } catch (const InvalidArgument& ex) {
      throw InvalidArgument(fmt::format("--error-rate: {}", ex.what()));
    }
    return std::pair<AnyGenerator, std::string>(ProgrammaticGenerator(gp),
                                                fmt::format("programmatic(err={})", gp.error_rate));
  };
  e.generators.emplace("programmatic", std::move(programmatic));
  TaskVerifier oracle;
  oracle.make = [] {
    VerifierSet v;
    v.step.emplace(OracleStepVerifier{});
    v.outcome.emplace(OracleOutcomeVerifier{});
    v.label = "oracle";
    return v;
  };
  e.verifiers.emplace("oracle", std::move(oracle));
  return e;
}

}  // namespace qstar::game24
