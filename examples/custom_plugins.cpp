// Custom plug-ins: a generator and a PRM written as lambdas over whole batches, driving
// MCTS. The generator wraps the programmatic Game of 24 proposer with a 30% error rate and
// counts its calls; the "PRM" only checks that each step's arithmetic is legal (it knows
// nothing of solvability) and that a final answer is right, so it is a weaker verifier
// than the exact oracle.
#include <cmath>
#include <iostream>

#include <qstar/adapters/callable.hpp>
#include <qstar/qstar.hpp>
#include <qstar/tasks/game24.hpp>

int main() {
  using namespace qstar;
  const auto problems = game24::load_csv(QSTAR_EXAMPLE_DATA, std::pair{901, 910});
  game24::Game24Task task;
  game24::GeneratorParams gp;
  gp.error_rate = 0.3;
  game24::ProgrammaticGenerator proposer(gp);
  std::size_t calls = 0, biggest = 0;

  auto gen = make_generator(
      [&](std::span<const ExpandRequest> batch) {
        ++calls;
        biggest = std::max(biggest, batch.size());
        return proposer.expand(batch);
      },
      "counting-proposer");
  auto prm = make_step_verifier(
      [](std::span<const StepScoreRequest> batch) {
        std::vector<std::vector<double>> out(batch.size());
        for (std::size_t r = 0; r < batch.size(); ++r) {
          const auto& tv = batch[r].trajectory;
          const auto puzzle = game24::parse_puzzle(batch[r].problem->text);
          for (std::size_t i = static_cast<std::size_t>(batch[r].first_new); i < tv.size(); ++i) {
            if (game24::is_answer_step(tv.text(i))) {
              out[r].push_back(game24::check_answer(puzzle, tv.text(i)) ? 1.0 : 0.0);
              continue;
            }
            // Legal so far (every step parses and its arithmetic is right)?
            const TrajectoryView prefix = tv.tree().trajectory(tv.node(i));
            out[r].push_back(game24::state_after(puzzle, prefix, nullptr) ? 0.6 : 0.0);
          }
        }
        return out;
      },
      "heuristic-prm");

  MctsParams params;
  params.num_simulations = 48;
  params.leaves_per_iteration = 4;
  params.expand_k = 4;
  const auto results = mcts_search(std::span<const Problem>(problems), task, gen, prm, params, 7);
  int solved = 0;
  for (const auto& r : results) solved += r.correct.value_or(false) ? 1 : 0;
  std::cout << "solved " << solved << "/" << results.size() << " with " << calls
            << " generator calls (largest batch " << biggest << ")\n";
  return solved > 0 ? 0 : 1;
}
