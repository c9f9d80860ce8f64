// Internal: the scored-sequence layouts of PrmVerifier (include/qstar/torch/prm.hpp, "The
// scored sequence"): which tokens a request becomes and at which positions it is read. No
// LibTorch here.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qstar/core/concepts.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/hf/chat_template.hpp"
#include "qstar/hf/tokenizer.hpp"
#include "qstar/torch/prm.hpp"

namespace qstar::lm::detail {

/// One request as the scorer sees it.
struct PrmReq {
  std::string_view prompt;
  const Problem* problem = nullptr;  // its text: {problem}, the chat's user message
  const TrajectoryView* trajectory = nullptr;
  std::int32_t first_new = 0;
};

/// The layout of one verifier, resolved at load.
struct PrmLayout {
  /// Steps: every step read at its tag's last token. Outcome: the whole response read at
  /// its last token (reward models, sequence classifiers).
  enum class Mode { Steps, Outcome };
  Mode mode = Mode::Steps;
  const hf::Tokenizer* tok = nullptr;
  std::string name;  // the verifier's name, for errors
  /// The prompt text: {prompt}, {problem} and {bos} replaced (Steps without a chat; Outcome
  /// without a chat: the text before the joined response).
  std::string prompt_template = "{prompt}";
  std::string bos_text;  // what {bos} becomes
  /// The chat layout: Steps: the generation prompt of [system, user] before the steps (or,
  /// with turns, the derived prefix); Outcome: the whole conversation.
  std::optional<hf::ChatTemplate> chat;
  std::string chat_system;  // "" = no system message
  /// Text tokenized together with the first step's text, before it (chat turns: " ").
  std::string first_lead;
  /// Chat turns (chat-logit): the prefix before the problem's text, derived from the chat.
  std::optional<std::string> turns_prefix;
  std::vector<std::int32_t> sep_tokens;  // between a step's tag and the next step's text
  std::vector<std::int32_t> tag_tokens;  // after every step; the step is read at the last
  std::string outcome_join = "\n\n";     // Outcome: the steps' texts joined by it

  /// The prompt's text of a request (memoisation key and what is tokenized).
  std::string prompt_text(const PrmReq& r) const;
  /// Its tokens (add_special_tokens only without a chat: the template writes them).
  std::vector<std::int32_t> encode_prompt(const std::string& text) const;
  /// The Steps sequence of prompt tokens + `tv`.
  PrmSequence build(const std::vector<std::int32_t>& prompt_tokens, const TrajectoryView& tv) const;
  /// The Outcome sequence of a request (step_ends = {the last token}).
  PrmSequence outcome(const PrmReq& r) const;
  /// Every request's sequence, prompts memoised within the call.
  std::vector<PrmSequence> build_all(std::span<const PrmReq> reqs) const;

  /// Chat turns: splits `chat` rendered with sentinel messages (a system message when
  /// chat_system is set; user: problem + " " + step, assistant: the judgement, user: step,
  /// assistant: the judgement) into the prefix, first_lead, the tag (the text between a
  /// step and the judgement) and the separator (judgement + the text up to the next
  /// step). InvalidArgument naming the template when it does not render the two step
  /// turns alike or drops a sentinel.
  struct Turns {
    std::string prefix, first_lead, tag, separator;
  };
  static Turns derive_turns(const hf::ChatTemplate& chat, const std::string& chat_system,
                            const std::string& judgement);
};

/// "{prompt}" / "{problem}" / "{bos}" replaced in `tmpl`.
std::string fill_prompt_template(std::string_view tmpl, std::string_view prompt, std::string_view problem,
                                 std::string_view bos);

/// `s` with newlines, tabs and quotes escaped, for messages.
std::string escaped(std::string_view s);

}  // namespace qstar::lm::detail
