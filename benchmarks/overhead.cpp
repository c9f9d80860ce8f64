// Core overhead per expanded node, with zero-cost plug-ins: the generator returns fixed
// one-token steps (terminal at a fixed depth) and the verifier a constant-time hash score.
// What is left is qstar's own work: the tree, requests, budgets, bookkeeping, selection,
// voting and results. Goal (issue #2): <= 2 us per node on the 2-core CI machine.
//
// Usage: bench_overhead [problems=64] [repeats=5] [algorithm]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <qstar/adapters/constant.hpp>
#include <qstar/search/search.hpp>

namespace {
using namespace qstar;

struct ZeroTask {
  std::string format(const Problem& p) const { return p.text; }
  bool is_terminal(const Step& s) const { return s.finish == FinishReason::FinalAnswer; }
  std::optional<std::string> extract_answer(const TrajectoryView& tv) const {
    return std::string(tv.text(tv.size() - 1));
  }
  std::string canonicalize(std::string_view a) const { return std::string(a); }
};

}  // namespace

int main(int argc, char** argv) {
  const int P = argc > 1 ? std::atoi(argv[1]) : 64;
  const int R = argc > 2 ? std::atoi(argv[2]) : 5;
  std::vector<Problem> problems;
  for (int i = 0; i < P; ++i) problems.push_back({std::to_string(i), "p" + std::to_string(i), std::nullopt});
  ZeroTask task;
  ConstantGenerator gen{6};  // steps "a".."h", one token each; the 6th step is final
  ConstantVerifier ver;

  BestOfNParams bon;
  bon.n = 64;
  BeamParams beam;
  beam.num_beams = 64;
  beam.width = 4;
  DvtsParams dv;
  dv.n = 64;
  dv.width = 4;
  BestFirstParams bf;
  bf.max_expansions = 64;
  bf.stop_threshold = 2.0;  // never stop early
  MctsParams mc;
  mc.num_simulations = 256;
  mc.leaves_per_iteration = 8;
  mc.expand_k = 4;
  const std::vector<SearchParams> algos = {bon, beam, dv, bf, mc};

  std::printf("qstar core overhead per expanded node (zero-cost plug-ins, %d problems per call, best of %d)\n", P, R);
  std::printf("%-12s %12s %12s %14s %10s\n", "algorithm", "nodes", "ns/node", "nodes/s", "vs 2us");
  for (const auto& sp : algos) {
    if (argc > 3 && std::string(argv[3]) != algorithm_name(sp)) continue;
    double best = 1e30;
    long long nodes = 0;
    for (int rep = 0; rep < R; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto rs = search(std::span<const Problem>(problems), task, gen, ver, sp, static_cast<std::uint64_t>(rep));
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      nodes = 0;
      for (const auto& r : rs) nodes += r.stats.nodes - 1;  // expanded (generated) nodes
      best = std::min(best, dt);
    }
    const double ns = best * 1e9 / static_cast<double>(nodes);
    std::printf("%-12s %12lld %12.1f %14.0f %9.2fx\n", algorithm_name(sp), nodes, ns, 1e9 / ns, 2000.0 / ns);
  }
  std::printf("(the last column is the 2 us goal divided by the measured cost: > 1 meets it)\n");
  return 0;
}
