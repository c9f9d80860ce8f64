// Basic value types shared by the core: ids, steps, problems, finish reasons.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qstar {

/// Index of a node in a Tree arena. Ids are dense, start at 0 (the root) and never change.
using NodeId = std::int32_t;
inline constexpr NodeId kNoNode = -1;

/// A token id of a language-model vocabulary.
using TokenId = std::int32_t;

/// Why a step ended.
enum class FinishReason : std::uint8_t {
  None = 0,     ///< not a generated step (the root)
  StepEnd,      ///< the step delimiter was reached; the solution continues
  FinalAnswer,  ///< the step carries the final answer (the task's answer marker)
  Eos,          ///< the generator emitted end-of-sequence
  Length,       ///< the per-step token limit (or the token budget) cut the step
};

inline constexpr const char* to_string(FinishReason r) noexcept {
  switch (r) {
    case FinishReason::None: return "none";
    case FinishReason::StepEnd: return "step";
    case FinishReason::FinalAnswer: return "answer";
    case FinishReason::Eos: return "eos";
    case FinishReason::Length: return "length";
  }
  return "none";
}

inline std::optional<FinishReason> finish_reason_from_string(std::string_view s) noexcept {
  if (s == "none") return FinishReason::None;
  if (s == "step") return FinishReason::StepEnd;
  if (s == "answer") return FinishReason::FinalAnswer;
  if (s == "eos") return FinishReason::Eos;
  if (s == "length") return FinishReason::Length;
  return std::nullopt;
}

/// True when the generator cannot continue after a step with this finish reason (it emitted
/// end-of-sequence, or a token limit cut the step): the trajectory ends whatever the Task says.
inline constexpr bool generator_stopped(FinishReason r) noexcept {
  return r == FinishReason::Eos || r == FinishReason::Length;
}

/// True when the generator reports that a step with this finish reason ends the solution: it
/// stopped, or it saw an answer marker (FinalAnswer). A hint for Task::is_terminal, which
/// decides; tasks that trust the generator's marker use it as their rule.
inline constexpr bool ends_solution(FinishReason r) noexcept {
  return r == FinishReason::FinalAnswer || generator_stopped(r);
}

/// One reasoning step proposed by a Generator.
struct Step {
  std::string text;                  ///< the step's text, delimiter excluded
  std::vector<TokenId> tokens;       ///< its token ids (empty for non-token generators)
  double logprob = 0.0;              ///< summed log-probability of its tokens
  std::int32_t num_tokens = 0;       ///< token count (== tokens.size() when tokens are given)
  FinishReason finish = FinishReason::StepEnd;  ///< why it ended
  /// Per-token log-probabilities, or empty when the generator does not report them. When
  /// given, one per generated token (size == num_tokens): the log-probability of that token
  /// under the MODEL's next-token distribution (softmax of the logits at temperature 1,
  /// before temperature / top-k / top-p; the quantity DeepConf's confidences use), so their
  /// sum is `logprob` (up to float rounding). The LM generator's list matches `tokens`
  /// (EOS's own log-probability is in neither); an HTTP server's list is its own tokens'.
  std::vector<float> token_logprobs{};
  /// Entropy in nats of the model's next-token distribution (temperature 1) at each generated
  /// position, or empty: the same positions as token_logprobs. From an HTTP server it is a
  /// truncated estimate over the top_logprobs it returned (-sum p log p over those tokens
  /// only: a lower bound of the true entropy).
  std::vector<float> token_entropies{};
};

/// One problem to solve.
struct Problem {
  std::string id;                   ///< a stable name (e.g. the dataset rank)
  std::string text;                 ///< the problem statement ("4 5 6 10", "What is 2 + 3?")
  std::optional<std::string> gold;  ///< a reference answer, when known
};

}  // namespace qstar
