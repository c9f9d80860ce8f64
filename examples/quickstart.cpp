// Quick start: solve one Game of 24 puzzle with step-level beam search, the programmatic
// generator (10% wrong steps) and the exact oracle PRM.
#include <iostream>

#include <qstar/qstar.hpp>
#include <qstar/tasks/game24.hpp>

int main() {
  using namespace qstar;
  std::vector<Problem> problems{{"demo", "4 5 6 10", std::nullopt}};
  game24::Game24Task task;
  game24::GeneratorParams gp;
  gp.error_rate = 0.1;
  game24::ProgrammaticGenerator gen(gp);
  game24::OracleStepVerifier prm;

  BeamParams params;  // N = 40 beams, width M = 8: 5 beams survive each step (ToT's b = 5)
  params.num_beams = 40;
  params.width = 8;
  auto results = beam_search(std::span<const Problem>(problems), task, gen, prm, params, /*seed=*/1);

  const SearchResult& r = results.front();
  for (const auto& step : r.steps()) std::cout << step << "\n";
  std::cout << "answer: " << r.answer.value_or("(none)") << "\n"
            << "correct: " << (r.correct.value_or(false) ? "yes" : "no") << "\n"
            << "generated tokens: " << r.stats.generated_tokens << "\n";
  return r.correct.value_or(false) ? 0 : 1;
}
