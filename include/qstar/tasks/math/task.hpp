// The math word-problem task (GSM8K, MATH-500, AIME or any JSONL set): the prompt, the step
// rule, answer extraction, the voting key and the exact grader.
//
// - Prompt: the problem as a chat (an optional system message and the user message
//   "{question}\n{instruction}") rendered by a ChatRenderer (the CLI fills one from the
//   model's tokenizer_config.json chat template, qstar/hf/chat_template.hpp), or, for base
//   models and when no renderer is given, the plain template string MathParams::plain_template.
// - Steps: paragraphs; the LM/HTTP generators end a step at MathParams::step_delimiter
//   ("\n\n", TaskEntry::step_delimiter).
// - Terminal: the step holds a complete final answer (extract_answer on its text succeeds:
//   a brace-matched \boxed{...}, "The answer is", "####"), or the generator stopped (EOS or
//   a token limit) or flagged an answer marker (ends_solution).
// - Answer: extract_answer over the whole trajectory (steps joined by the delimiter).
// - Voting key: canonical_key (the value when the answer evaluates, so \frac12, 0.5 and 1/2
//   vote together; else the normalised text). check: answers_equal(gold, answer, mode).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "qstar/core/concepts.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/core/types.hpp"
#include "qstar/error.hpp"
#include "qstar/tasks/math/grader.hpp"

namespace qstar::math {

/// The instruction of Qwen2.5-Math and most math PRM papers (the default preset "boxed").
inline constexpr std::string_view kBoxedInstruction =
    "Please reason step by step, and put your final answer within \\boxed{}.";
/// The GSM8K-style instruction (preset "answer-is").
inline constexpr std::string_view kAnswerIsInstruction =
    "Solve the problem step by step. End with a line \"The answer is N.\" where N is the final answer.";

/// The instruction of a named preset: "boxed", "answer-is" or "none" (empty).
/// InvalidArgument naming the preset otherwise.
inline std::string instruction_preset(std::string_view name) {
  if (name == "boxed") return std::string(kBoxedInstruction);
  if (name == "answer-is") return std::string(kAnswerIsInstruction);
  if (name == "none") return {};
  throw InvalidArgument(fmt::format("instruction preset: '{}' is not one of boxed, answer-is, none", name));
}

/// One chat message (role "system", "user" or "assistant").
struct ChatTurn {
  std::string role, content;
};

/// Renders chat messages as one prompt, the assistant's generation prompt appended (a model's
/// chat template). An empty function means: no chat, use the plain template.
using ChatRenderer = std::function<std::string(const std::vector<ChatTurn>& messages)>;

/// How MathTask prompts, splits and grades. Every field has a default; validate() throws
/// InvalidArgument naming the field.
struct MathParams {
  /// The instruction after the question (a preset: instruction_preset(); "" = none).
  std::string instruction = std::string(kBoxedInstruction);
  /// The user message: "{question}" is the problem text, "{instruction}" the instruction.
  std::string user_template = "{question}\n{instruction}";
  /// The chat's system message ("" = no system message).
  std::string system;
  /// The whole prompt when no chat renderer is set (base models): "{user}" is the user
  /// message, "{system}" the system message; must contain "{user}" or "{question}".
  std::string plain_template = "{user}\n\n";
  /// The text between steps (paragraphs): the LM/HTTP generators' step_delimiter, and the
  /// separator extract_answer joins the steps with. Not empty.
  std::string step_delimiter = "\n\n";
  /// Lenient (Qwen2.5-Math-like, the default) or Strict (PRM800K-like) grading.
  GradeMode mode = GradeMode::Lenient;
  /// Bounds on the grader's work per answer.
  GraderLimits limits;

  void validate() const {
    if (user_template.find("{question}") == std::string::npos)
      throw InvalidArgument("user_template: must contain \"{question}\"");
    if (plain_template.find("{user}") == std::string::npos && plain_template.find("{question}") == std::string::npos)
      throw InvalidArgument("plain_template: must contain \"{user}\" or \"{question}\"");
    if (step_delimiter.empty()) throw InvalidArgument("step_delimiter: must not be empty");
    limits.validate();
  }
};

namespace detail {

/// `tmpl` with every "{key}" of `vars` replaced (one pass, left to right; other braces kept).
inline std::string substitute(std::string_view tmpl, const std::vector<std::pair<std::string_view, std::string_view>>& vars) {
  std::string out;
  std::size_t i = 0;
  while (i < tmpl.size()) {
    bool hit = false;
    if (tmpl[i] == '{')
      for (const auto& [k, v] : vars)
        if (tmpl.substr(i + 1).starts_with(k) && i + 1 + k.size() < tmpl.size() && tmpl[i + 1 + k.size()] == '}') {
          out += v;
          i += k.size() + 2;
          hit = true;
          break;
        }
    if (!hit) out += tmpl[i++];
  }
  return out;
}

}  // namespace detail

/// The math Task plug-in (see the file comment). Copies share the renderer.
class MathTask {
 public:
  explicit MathTask(MathParams params = {}, ChatRenderer chat = {}) : p_(std::move(params)), chat_(std::move(chat)) {
    p_.validate();
  }

  const MathParams& params() const noexcept { return p_; }
  /// Whether prompts are rendered as a chat.
  bool uses_chat() const noexcept { return static_cast<bool>(chat_); }

  /// The user message of a problem.
  std::string user_message(const Problem& problem) const {
    std::string user = detail::substitute(p_.user_template, {{"question", problem.text}, {"instruction", p_.instruction}});
    // No instruction: no dangling separator after the question.
    if (p_.instruction.empty())
      while (!user.empty() && (user.back() == '\n' || user.back() == ' ')) user.pop_back();
    return user;
  }

  /// The chat messages of a problem: the system message (when set) and the user message.
  std::vector<ChatTurn> messages(const Problem& problem) const {
    std::vector<ChatTurn> m;
    if (!p_.system.empty()) m.push_back({"system", p_.system});
    m.push_back({"user", user_message(problem)});
    return m;
  }

  /// The prompt: the chat rendered by the renderer when set, else the plain template.
  std::string format(const Problem& problem) const {
    if (chat_) return chat_(messages(problem));
    const std::string user = user_message(problem);
    return detail::substitute(p_.plain_template,
                              {{"user", user}, {"system", p_.system}, {"question", problem.text}, {"instruction", p_.instruction}});
  }

  /// A step that holds a complete final answer ends the solution; so does any step whose
  /// finish reason does (the generator stopped, or flagged an answer marker).
  bool is_terminal(const Step& step) const {
    return ends_solution(step.finish) || math::extract_answer(step.text).has_value();
  }

  /// The final answer of the whole trajectory (steps joined by the step delimiter).
  std::optional<std::string> extract_answer(const TrajectoryView& trajectory) const {
    if (trajectory.empty()) return std::nullopt;
    return math::extract_answer(trajectory.joined(p_.step_delimiter));
  }

  /// The voting key: equal for answers of equal value.
  std::string canonicalize(std::string_view answer) const { return canonical_key(answer, p_.limits); }

  /// Whether `answer` equals the problem's gold (false when the problem has none).
  bool check(const Problem& problem, std::string_view answer) const {
    if (!problem.gold) return false;
    return answers_equal(*problem.gold, answer, p_.mode, p_.limits);
  }

 private:
  MathParams p_;
  ChatRenderer chat_;
};

static_assert(Task<MathTask> && CheckedTask<MathTask>);

/// "lenient" or "strict"; InvalidArgument naming `what` otherwise.
inline GradeMode grade_mode_from_string(std::string_view s, std::string_view what = "mode") {
  if (s == "lenient") return GradeMode::Lenient;
  if (s == "strict") return GradeMode::Strict;
  throw InvalidArgument(fmt::format("{}: '{}' is not one of lenient, strict", what, s));
}

}  // namespace qstar::math
