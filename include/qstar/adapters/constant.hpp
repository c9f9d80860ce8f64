// Zero-cost plug-ins: a Generator and a verifier that do no work beyond filling their
// results, so that what a search costs with them is qstar's own overhead (bench_overhead,
// the Python bindings' `qstar.testing` plug-ins and their overhead benchmark).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "qstar/core/concepts.hpp"

namespace qstar {

/// Proposes num_candidates one-character steps ('a'..'h' from the request seed and the
/// candidate index), one token each, logprob -1; the step at `depth` is a final answer.
struct ConstantGenerator {
  int depth = 4;
  std::string name() const { return "testing-constant"; }
  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> batch) const {
    std::vector<std::vector<Step>> out(batch.size());
    for (std::size_t r = 0; r < batch.size(); ++r) {
      const bool final = static_cast<int>(batch[r].prefix.size()) + 1 >= depth;
      out[r].resize(static_cast<std::size_t>(batch[r].num_candidates));
      for (int c = 0; c < batch[r].num_candidates; ++c) {
        Step& s = out[r][static_cast<std::size_t>(c)];
        s.text.assign(1, static_cast<char>('a' + static_cast<int>((batch[r].seed + static_cast<std::uint64_t>(c)) % 8)));
        s.num_tokens = 1;
        s.logprob = -1.0;
        s.finish = final ? FinishReason::FinalAnswer : FinishReason::StepEnd;
      }
    }
    return out;
  }
};

/// Scores each new step (its first character's code mod 7) / 7 (0 for an empty step);
/// every outcome 0.5.
struct ConstantVerifier {
  std::string name() const { return "testing-constant"; }
  std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest> batch) const {
    std::vector<std::vector<double>> out(batch.size());
    for (std::size_t r = 0; r < batch.size(); ++r) {
      const auto& tv = batch[r].trajectory;
      for (std::size_t i = static_cast<std::size_t>(batch[r].first_new); i < tv.size(); ++i) {
        const auto t = tv.text(i);
        out[r].push_back(t.empty() ? 0.0 : static_cast<double>(static_cast<unsigned char>(t[0]) % 7) / 7.0);
      }
    }
    return out;
  }
  std::vector<double> score_outcomes(std::span<const OutcomeRequest> batch) const {
    return std::vector<double>(batch.size(), 0.5);
  }
};

}  // namespace qstar
