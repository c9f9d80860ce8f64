// PrmVerifier's scored-sequence layouts (prm_layout.hpp): prompts, steps and tags, chat
// turns derived from a chat template, and whole responses for outcome heads.
#include "torch/prm_layout.hpp"

#include <fmt/format.h>

#include <unordered_map>
#include <utility>

#include "qstar/error.hpp"

namespace qstar::lm::detail {

std::string escaped(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '"') out += "\\\"";
    else out += c;
  }
  return out;
}

std::string fill_prompt_template(std::string_view t, std::string_view prompt, std::string_view problem,
                                 std::string_view bos) {
  static constexpr std::pair<std::string_view, int> kKeys[] = {{"{prompt}", 0}, {"{problem}", 1}, {"{bos}", 2}};
  std::string out;
  std::size_t pos = 0;
  while (pos < t.size()) {
    std::size_t best = std::string_view::npos;
    int which = -1;
    std::size_t len = 0;
    for (const auto& [key, id] : kKeys) {
      const std::size_t at = t.find(key, pos);
      if (at < best) best = at, which = id, len = key.size();
    }
    if (best == std::string_view::npos) break;
    out.append(t.substr(pos, best - pos));
    out.append(which == 0 ? prompt : which == 1 ? problem : bos);
    pos = best + len;
  }
  if (pos < t.size()) out.append(t.substr(pos));
  return out;
}

std::string PrmLayout::prompt_text(const PrmReq& r) const {
  const bool needs_problem = chat.has_value() || prompt_template.find("{problem}") != std::string::npos;
  if (needs_problem && r.problem == nullptr)
    throw InvalidArgument(fmt::format(
        "{}: a chat layout (or {{problem}} in the prompt template) needs the request's problem (it is null)",
        name));
  if (turns_prefix) return *turns_prefix + r.problem->text;
  if (chat && mode == Mode::Steps) {
    std::vector<hf::ChatMessage> messages;
    if (!chat_system.empty()) messages.push_back({"system", chat_system});
    messages.push_back({"user", r.problem->text});
    return chat->render(messages, /*add_generation_prompt=*/true);
  }
  return fill_prompt_template(prompt_template, r.prompt, r.problem ? std::string_view(r.problem->text) : "",
                              bos_text);
}

std::vector<std::int32_t> PrmLayout::encode_prompt(const std::string& text) const {
  return tok->encode(text, /*add_special_tokens=*/!chat);
}

PrmSequence PrmLayout::build(const std::vector<std::int32_t>& prompt_tokens, const TrajectoryView& tv) const {
  PrmSequence s;
  s.tokens = prompt_tokens;
  s.step_ends.reserve(tv.size());
  std::string text;
  for (std::size_t i = 0; i < tv.size(); ++i) {
    if (i > 0) s.tokens.insert(s.tokens.end(), sep_tokens.begin(), sep_tokens.end());
    std::vector<std::int32_t> step;
    if (i == 0 && !first_lead.empty()) {
      text.assign(first_lead);
      text.append(tv.text(0));
      step = tok->encode(text);
    } else {
      step = tok->encode(tv.text(i));
    }
    s.tokens.insert(s.tokens.end(), step.begin(), step.end());
    s.tokens.insert(s.tokens.end(), tag_tokens.begin(), tag_tokens.end());
    s.step_ends.push_back(static_cast<std::int64_t>(s.tokens.size()) - 1);
  }
  return s;
}

PrmSequence PrmLayout::outcome(const PrmReq& r) const {
  std::string response;
  const TrajectoryView& tv = *r.trajectory;
  for (std::size_t i = 0; i < tv.size(); ++i) {
    if (i > 0) response += outcome_join;
    response.append(tv.text(i));
  }
  PrmSequence s;
  if (chat) {
    if (r.problem == nullptr)
      throw InvalidArgument(fmt::format("{}: a chat layout needs the request's problem (it is null)", name));
    std::vector<hf::ChatMessage> messages;
    if (!chat_system.empty()) messages.push_back({"system", chat_system});
    messages.push_back({"user", r.problem->text});
    messages.push_back({"assistant", response});
    s.tokens = tok->encode(chat->render(messages, /*add_generation_prompt=*/false), false);
  } else {
    s.tokens = tok->encode(prompt_text(r) + response, true);
  }
  if (s.tokens.empty()) throw InvalidArgument(fmt::format("{}: a request's sequence has no tokens", name));
  s.step_ends.push_back(static_cast<std::int64_t>(s.tokens.size()) - 1);
  return s;
}

std::vector<PrmSequence> PrmLayout::build_all(std::span<const PrmReq> reqs) const {
  std::vector<PrmSequence> out;
  out.reserve(reqs.size());
  if (mode == Mode::Outcome) {
    for (const PrmReq& r : reqs) out.push_back(outcome(r));
    return out;
  }
  // Memoised by the prompt's text, so a call renders and encodes each distinct prompt once.
  std::unordered_map<std::string, std::vector<std::int32_t>> prompts;
  for (const PrmReq& r : reqs) {
    std::string key = prompt_text(r);
    auto it = prompts.find(key);
    if (it == prompts.end()) {
      auto toks = encode_prompt(key);
      it = prompts.emplace(std::move(key), std::move(toks)).first;
    }
    out.push_back(build(it->second, *r.trajectory));
  }
  return out;
}

PrmLayout::Turns PrmLayout::derive_turns(const hf::ChatTemplate& chat, const std::string& chat_system,
                                         const std::string& judgement) {
  // Sentinels: plain letters, so no template escapes or trims them.
  const std::string Q = "QSTARSENTINELQUESTION", S1 = "QSTARSENTINELSTEPONE", S2 = "QSTARSENTINELSTEPTWO",
                    A = "QSTARSENTINELJUDGEMENT";
  std::vector<hf::ChatMessage> m;
  if (!chat_system.empty()) m.push_back({"system", chat_system});
  m.push_back({"user", Q + " " + S1});
  m.push_back({"assistant", A});
  m.push_back({"user", S2});
  m.push_back({"assistant", A});
  const std::string text = chat.render(m, /*add_generation_prompt=*/false);
  auto fail = [&](std::string_view why) {
    throw InvalidArgument(fmt::format(
        "PrmParams.chat_template: {}: cannot derive the chat-logit layout (each step a user turn, "
        "the judgement an assistant turn): {}; rendered \"{}\"",
        chat.name(), why, escaped(text.substr(0, 600))));
  };
  const std::size_t q = text.find(Q);
  const std::size_t s1 = q == std::string::npos ? q : text.find(S1, q);
  const std::size_t a1 = s1 == std::string::npos ? s1 : text.find(A, s1);
  const std::size_t s2 = a1 == std::string::npos ? a1 : text.find(S2, a1);
  const std::size_t a2 = s2 == std::string::npos ? s2 : text.find(A, s2);
  if (a2 == std::string::npos) fail("a message's content is missing from the rendered text");
  Turns t;
  t.prefix = text.substr(0, q);
  t.first_lead = text.substr(q + Q.size(), s1 - q - Q.size());
  t.tag = text.substr(s1 + S1.size(), a1 - s1 - S1.size());
  t.separator = judgement + text.substr(a1 + A.size(), s2 - a1 - A.size());
  const std::string tag2 = text.substr(s2 + S2.size(), a2 - s2 - S2.size());
  if (tag2 != t.tag)
    fail(fmt::format("the second step's turn ends with \"{}\", the first's with \"{}\"", escaped(tag2),
                     escaped(t.tag)));
  if (t.tag.empty()) fail("nothing between a step and its judgement");
  return t;
}

}  // namespace qstar::lm::detail
